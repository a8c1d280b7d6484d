"""The safe outbound client against real local servers over real sockets.

Real DNS is not available here, so the rebinding tests replace `socket.getaddrinfo` for made-up
`.test` names only; every other lookup (IP literals, localhost) goes to the real resolver.
"""

from __future__ import annotations

import datetime
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from integrations import safe_http
from integrations.safe_http import (
    OutboundHTTPError,
    UnsafeURLError,
    asafe_request,
    safe_request,
    validate_url,
)

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Server:
    port: int
    seen: list[BaseHTTPRequestHandler] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


def reply(handler: BaseHTTPRequestHandler, status: int = 200, body: bytes = b"", **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def ok(handler: BaseHTTPRequestHandler) -> None:
    reply(handler, 200, b'{"hello": "world"}', Content_Type="application/json")


def redirect_to(location: str, status: int = 302) -> Route:
    return lambda handler: reply(handler, status, Location=location)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # clients that give up (size cap, timeout) leave handlers writing to a closed socket


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Start a local HTTP(S) server on 127.0.0.1 with a route per path."""
    started: list[ThreadingHTTPServer] = []

    def start(routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> Server:
        record = Server(port=0)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                record.seen.append(self)
                record.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                routes[self.path.split("?")[0]](self)

            do_POST = do_PUT = do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        httpd = QuietServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda sslobj, name, ctx: record.sni.append(name)
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(httpd)
        record.port = httpd.server_address[1]
        return record

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def allow_local(settings):
    settings.OUTBOUND_ALLOW_HOSTS = ["127.0.0.1"]


@pytest.fixture
def fake_dns(monkeypatch) -> dict[str, list[list[str]]]:
    """name -> successive answers (the last one repeats); an empty answer means NXDOMAIN.
    Every lookup of a fake name is recorded under "calls"."""
    answers: dict[str, list[list[str]]] = {"calls": []}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        answers["calls"].append([host])
        queue = answers[host]
        ips = queue.pop(0) if len(queue) > 1 else queue[0]
        if not ips:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port))) for ip in ips]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


BLOCKED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://10.0.0.5/", "10.0.0.5: private address"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.254/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[::1]/", "loopback"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fd00:ec2::254]/", "cloud metadata"),
    ("http://[::ffff:10.0.0.5]/", "private"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
    ("http://100.64.0.1/", "shared address space"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://2130706433/", "loopback"),
]


@pytest.mark.parametrize(("url", "reason"), BLOCKED)
def test_private_and_special_addresses_are_refused_at_save_time(url, reason):
    with pytest.raises(UnsafeURLError, match=reason):
        validate_url(url)


@pytest.mark.parametrize(("url", "reason"), BLOCKED)
def test_private_and_special_addresses_are_refused_at_request_time(url, reason):
    with pytest.raises(UnsafeURLError, match=reason):
        safe_request("GET", url)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/file", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)", "//x/"],
)
def test_only_http_and_https_are_allowed(url):
    with pytest.raises(UnsafeURLError, match="Only http and https"):
        safe_request("GET", url)


@pytest.mark.parametrize("url", ["http://user:pass@example.com/", "https://token@127.0.0.1/"])
def test_userinfo_in_url_is_refused(url):
    with pytest.raises(UnsafeURLError, match="user name or password"):
        validate_url(url)


def test_url_without_host_is_refused():
    with pytest.raises(UnsafeURLError):
        validate_url("http:///path")


def test_metadata_host_name_is_refused_without_resolving(fake_dns):
    with pytest.raises(UnsafeURLError, match="metadata.google.internal: cloud metadata host"):
        validate_url("http://metadata.google.internal/computeMetadata/v1/")
    assert fake_dns["calls"] == []


def test_metadata_address_stays_refused_even_when_allow_listed(settings):
    settings.OUTBOUND_ALLOW_HOSTS = ["169.254.0.0/16", "169.254.169.254"]

    with pytest.raises(UnsafeURLError, match="cloud metadata"):
        safe_request("GET", "http://169.254.169.254/")


def test_local_server_is_refused_without_allow_list(serve):
    server = serve({"/": ok})

    with pytest.raises(UnsafeURLError, match="Refusing to connect to 127.0.0.1: loopback address"):
        safe_request("GET", server.url())
    assert server.seen == []


def test_allow_list_cidr_lets_a_local_server_through(serve, settings):
    server = serve({"/": ok})
    settings.OUTBOUND_ALLOW_HOSTS = ["10.0.0.0/8", "127.0.0.0/8"]

    response = safe_request("GET", server.url())

    assert response.status_code == 200
    assert response.json() == {"hello": "world"}
    assert response.text == '{"hello": "world"}'
    assert response.headers["content-type"] == "application/json"
    assert response.url == server.url()


def test_allow_list_host_name_lets_localhost_through(serve, settings):
    server = serve({"/": ok})
    settings.OUTBOUND_ALLOW_HOSTS = ["LocalHost"]

    assert safe_request("GET", server.url(host="localhost")).status_code == 200
    with pytest.raises(UnsafeURLError):
        safe_request("GET", server.url(host="127.0.0.1"))


def test_allow_list_is_read_at_call_time(serve, settings):
    server = serve({"/": ok})
    with pytest.raises(UnsafeURLError):
        validate_url(server.url())

    settings.OUTBOUND_ALLOW_HOSTS = ["127.0.0.1"]

    validate_url(server.url())
    assert safe_request("GET", server.url()).status_code == 200


def test_post_sends_json_params_and_headers(serve, allow_local):
    server = serve({"/hook": lambda h: reply(h, 201, b"created")})

    response = safe_request(
        "post", server.url("/hook?a=1"), json={"x": 1}, params={"b": "2"}, headers={"X-Sig": "abc"}
    )

    assert (response.status_code, response.text) == (201, "created")
    request = server.seen[0]
    assert (request.command, request.path, request.headers["X-Sig"]) == ("POST", "/hook?a=1&b=2", "abc")
    assert json.loads(server.bodies[0]) == {"x": 1}


def test_error_statuses_are_returned_not_raised(serve, allow_local):
    server = serve({"/": lambda h: reply(h, 503, b"down")})

    assert safe_request("GET", server.url()).status_code == 503


def test_redirect_is_followed_and_final_url_reported(serve, allow_local):
    server = serve({"/start": redirect_to("/end"), "/end": ok})

    response = safe_request("GET", server.url("/start"))

    assert response.status_code == 200
    assert response.url == server.url("/end")
    assert [r.path for r in server.seen] == ["/start", "/end"]


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("http://10.0.0.5/admin", "Refusing to connect to 10.0.0.5: private address"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[::1]:8080/", "loopback"),
        ("file:///etc/passwd", "Only http and https"),
        ("http://admin:pw@127.0.0.1/", "user name or password"),
    ],
)
def test_redirect_to_a_forbidden_target_is_refused_at_the_hop(serve, allow_local, location, error):
    server = serve({"/start": redirect_to(location)})

    with pytest.raises(UnsafeURLError, match=error):
        safe_request("GET", server.url("/start"))
    assert [r.path for r in server.seen] == ["/start"]


def test_redirect_loop_stops_at_max_redirects(serve, allow_local):
    server = serve({"/loop": redirect_to("/loop")})

    with pytest.raises(OutboundHTTPError, match="Too many redirects"):
        safe_request("GET", server.url("/loop"), max_redirects=3)
    assert len(server.seen) == 4


def test_redirect_to_another_origin_drops_caller_headers(serve, allow_local):
    other = serve({"/": ok})
    server = serve({"/same": redirect_to("/cross"), "/cross": redirect_to(other.url())})

    safe_request("GET", server.url("/same"), headers={"Authorization": "Bearer sk-secret"})

    assert server.seen[1].headers["Authorization"] == "Bearer sk-secret"
    assert other.seen[0].headers["Authorization"] is None


def test_303_after_post_becomes_get_without_body(serve, allow_local):
    server = serve({"/form": redirect_to("/done", 303), "/done": ok})

    safe_request("POST", server.url("/form"), data={"a": "1"})

    assert [(r.command, r.path) for r in server.seen] == [("POST", "/form"), ("GET", "/done")]
    assert server.bodies == [b"a=1", b""]


def test_307_keeps_method_and_body(serve, allow_local):
    server = serve({"/old": redirect_to("/new", 307), "/new": ok})

    safe_request("PUT", server.url("/old"), data=b"raw")

    assert [r.command for r in server.seen] == ["PUT", "PUT"]
    assert server.bodies == [b"raw", b"raw"]


def test_declared_oversized_body_is_refused(serve, allow_local):
    server = serve({"/": lambda h: reply(h, 200, b"x" * 2048)})

    with pytest.raises(OutboundHTTPError, match="exceeds 1024 bytes"):
        safe_request("GET", server.url(), max_bytes=1024)


def endless(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.end_headers()  # no Content-Length: the body runs until the connection closes
    try:
        for _ in range(2000):
            handler.wfile.write(b"y" * 65536)
    except OSError:
        pass


def test_streamed_body_is_aborted_at_the_size_cap(serve, allow_local, settings):
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 100_000
    server = serve({"/": endless})

    started = time.monotonic()
    with pytest.raises(OutboundHTTPError, match="exceeds 100000 bytes"):
        safe_request("GET", server.url())
    assert time.monotonic() - started < 5


def test_slow_server_times_out(serve, allow_local):
    server = serve({"/": lambda h: (time.sleep(3), reply(h))})

    started = time.monotonic()
    with pytest.raises(OutboundHTTPError, match="Timed out after 0.5s"):
        safe_request("GET", server.url(), timeout=0.5)
    assert time.monotonic() - started < 2


def trickle(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    try:
        for _ in range(100):
            handler.wfile.write(b"z")
            handler.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


def test_total_timeout_covers_a_body_that_trickles_in(serve, allow_local):
    server = serve({"/": trickle})

    started = time.monotonic()
    with pytest.raises(OutboundHTTPError, match="Timed out"):
        safe_request("GET", server.url(), timeout=1)
    assert time.monotonic() - started < 3


def test_refused_connection_is_an_outbound_error(allow_local):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(OutboundHTTPError, match="failed: ConnectError"):
        safe_request("GET", f"http://127.0.0.1:{port}/")


def test_unresolvable_host_is_refused_at_save_time_and_fails_at_request_time(fake_dns):
    fake_dns["nowhere.test"] = [[]]

    with pytest.raises(UnsafeURLError, match="Could not resolve nowhere.test"):
        validate_url("https://nowhere.test/")
    with pytest.raises(OutboundHTTPError, match="Could not resolve nowhere.test"):
        safe_request("GET", "https://nowhere.test/")


def test_public_name_resolving_to_a_private_address_is_refused_before_connecting(fake_dns):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.3)
    fake_dns["evil.test"] = [["127.0.0.1"]]

    with listener:
        with pytest.raises(UnsafeURLError, match=r"evil.test \(127.0.0.1\): loopback"):
            safe_request("GET", f"http://evil.test:{listener.getsockname()[1]}/")
        with pytest.raises(TimeoutError):
            listener.accept()


def test_any_private_address_among_the_answers_is_refused(fake_dns):
    fake_dns["mixed.test"] = [["93.184.216.34", "10.1.2.3"]]

    with pytest.raises(UnsafeURLError, match=r"mixed.test \(10.1.2.3\): private address"):
        validate_url("https://mixed.test/")


def test_connection_goes_to_the_checked_address_with_the_original_host(serve, allow_local, fake_dns):
    server = serve({"/": ok})
    # A rebinding resolver: the first answer passes the check, later ones point at metadata.
    fake_dns["public.test"] = [["127.0.0.1"], ["169.254.169.254"]]

    response = safe_request("GET", server.url(host="public.test"))

    assert response.status_code == 200
    assert server.seen[0].headers["Host"] == f"public.test:{server.port}"
    assert fake_dns["calls"] == [["public.test"]]


@pytest.fixture
def tls_for_public_test(tmp_path: Path, monkeypatch) -> Iterator[ssl.SSLContext]:
    """A self-signed certificate for public.test only (no IP in it), trusted by the client
    through SSL_CERT_FILE, which the shared client reads when it is built."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "public.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("public.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    safe_http._client.cache_clear()
    yield server_context
    safe_http._client.cache_clear()


def test_https_uses_the_host_name_for_sni_and_certificate_check(
    serve, allow_local, fake_dns, tls_for_public_test
):
    server = serve({"/": ok}, tls=tls_for_public_test)
    fake_dns["public.test"] = [["127.0.0.1"]]

    response = safe_request("GET", server.url(host="public.test", scheme="https"))

    assert response.json() == {"hello": "world"}
    assert server.sni == ["public.test"]
    assert server.seen[0].headers["Host"] == f"public.test:{server.port}"


def test_https_to_the_bare_ip_fails_the_certificate_check(serve, allow_local, tls_for_public_test):
    server = serve({"/": ok}, tls=tls_for_public_test)

    with pytest.raises(OutboundHTTPError, match="CERTIFICATE_VERIFY_FAILED"):
        safe_request("GET", server.url(scheme="https"))


def test_only_method_and_host_are_logged(serve, allow_local, caplog):
    server = serve({"/": ok})
    caplog.set_level(logging.DEBUG)

    safe_request("GET", server.url("/?api_key=sk-query-secret"), headers={"Authorization": "sk-head-secret"})

    assert "outbound GET 127.0.0.1" in caplog.text
    assert "secret" not in caplog.text


async def test_async_request_reaches_an_allowed_server_and_follows_redirects(serve, allow_local):
    server = serve({"/start": redirect_to("/end"), "/end": ok})

    response = await asafe_request("GET", server.url("/start"))

    assert response.json() == {"hello": "world"}
    assert response.url == server.url("/end")


async def test_async_request_refuses_rebinding_and_private_redirects(serve, allow_local, fake_dns):
    server = serve({"/start": redirect_to("http://192.168.0.1/")})
    fake_dns["evil.test"] = [["10.9.9.9"]]

    with pytest.raises(UnsafeURLError, match=r"evil.test \(10.9.9.9\): private address"):
        await asafe_request("GET", "http://evil.test/")
    with pytest.raises(UnsafeURLError, match="192.168.0.1: private address"):
        await asafe_request("GET", server.url("/start"))


async def test_async_size_cap_and_timeout(serve, allow_local):
    server = serve({"/big": endless, "/slow": lambda h: (time.sleep(3), reply(h))})

    with pytest.raises(OutboundHTTPError, match="exceeds 1000 bytes"):
        await asafe_request("GET", server.url("/big"), max_bytes=1000)
    with pytest.raises(OutboundHTTPError, match="Timed out"):
        await asafe_request("GET", server.url("/slow"), timeout=0.5)
