"""The one outbound HTTP client for user-configured URLs (HTTP tools, webhooks, URL ingestion, BYO
model base URLs).

Only http and https, no userinfo. The host is resolved once, inside the connection (a custom httpcore
network backend), and the socket goes to the address that was checked, so DNS cannot change between
check and connect (rebinding); TLS still uses the host name for SNI and the certificate, and the Host
header is the original. Redirects are followed by hand, each hop checked the same way. Timeouts and
a size cap span the whole request. `OUTBOUND_ALLOW_HOSTS` (names or CIDRs) exempts operator-run
services from the private-address block, never metadata. Only method and host are logged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json as jsonlib
import logging
import socket
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import anyio.to_thread
import httpcore
import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = {"http": 80, "https": 443}
_REDIRECTS = {301, 302, 303, 307, 308}
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA_HOSTS = {"metadata.google.internal", "metadata"}
_METADATA_IPS = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}


class UnsafeURLError(ValueError):
    """The URL or the address it resolves to is not allowed."""


class OutboundHTTPError(Exception):
    """The request was allowed but failed: timeout, oversized response, too many redirects, I/O."""


@dataclass(frozen=True)
class SafeResponse:
    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str
    encoding: str = "utf-8"

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding, errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


# ---------------------------------------------------------------- checks


def _parse(url: str | httpx.URL) -> httpx.URL:
    """Syntax only: scheme, no userinfo, a host. Uses httpx's own parser so that the host checked
    here is the host the client connects to."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UnsafeURLError(f"Invalid URL: {exc}")
    if parsed.scheme not in _SCHEMES:
        raise UnsafeURLError(f"Only http and https URLs are allowed, not {parsed.scheme or 'none'!r}")
    if parsed.userinfo:
        raise UnsafeURLError("URLs with a user name or password are not allowed")
    if not parsed.host:
        raise UnsafeURLError("The URL has no host")
    return parsed


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), which is where it leads."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.ipv4_mapped or ip.sixtofour


def _unsafe_reason(ip: IPAddress) -> str | None:
    if ip in _METADATA_IPS:
        return "cloud metadata address"
    checks = (
        (ip.is_unspecified, "unspecified address"),
        (ip.is_loopback, "loopback address"),
        (ip.is_link_local, "link-local address"),
        (ip.is_multicast, "multicast address"),
        (ip in _SHARED, "shared address space"),
        (ip.is_reserved, "reserved address"),
        (ip.is_private, "private address"),
        (not ip.is_global, "non-public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


@cache
def _allow_list(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple[Any, ...]]:
    names: set[str] = set()
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            names.add(entry.strip().lower().rstrip("."))
    return frozenset(names), tuple(networks)


def _check_address(host: str, ip: IPAddress) -> None:
    target = _embedded_v4(ip) or ip
    reason = _unsafe_reason(target)
    if reason is None:
        return
    names, networks = _allow_list(tuple(settings.OUTBOUND_ALLOW_HOSTS))
    allowed = host in names or any(addr in net for addr in (ip, target) for net in networks)
    # Metadata endpoints hand out cloud credentials: no allow-list entry opens them.
    if allowed and reason != "cloud metadata address":
        return
    where = str(ip) if host == str(ip) else f"{host} ({ip})"
    raise UnsafeURLError(f"Refusing to connect to {where}: {reason}")


def _resolve_checked(host: str, port: int) -> list[str]:
    """Resolve `host` once and return its addresses, refusing if any of them is off limits.
    Raises socket.gaierror when the name does not resolve."""
    host = host.lower().rstrip(".")
    if host in _METADATA_HOSTS:
        raise UnsafeURLError(f"Refusing to connect to {host}: cloud metadata host")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]))
        _check_address(host, ip)
        if str(ip) not in addresses:
            addresses.append(str(ip))
    if not addresses:
        raise socket.gaierror(f"No addresses for {host}")
    return addresses


def validate_url(url: str) -> None:
    """Save-time check for forms and serializers: syntax, then the addresses the host resolves to.
    Requests check again when they connect, since DNS answers change."""
    parsed = _parse(url)
    try:
        _resolve_checked(parsed.host, parsed.port or _SCHEMES[parsed.scheme])
    except (socket.gaierror, UnicodeError):
        raise UnsafeURLError(f"Could not resolve {parsed.host}")


# ------------------------------------------------------ transport + client


class _GuardedBackend(httpcore.SyncBackend):
    """Every new connection resolves and checks its host here, then connects to a checked
    address. httpcore still does TLS with server_hostname = the URL's host."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception = httpcore.ConnectError(f"Could not resolve {host}")
        for address in _addresses_or_connect_error(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


class _AsyncGuardedBackend(httpcore.AnyIOBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception = httpcore.ConnectError(f"Could not resolve {host}")
        for address in await anyio.to_thread.run_sync(_addresses_or_connect_error, host, port):
            try:
                return await super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


def _addresses_or_connect_error(host: str, port: int) -> list[str]:
    try:
        return _resolve_checked(host, port)
    except (socket.gaierror, UnicodeError):
        raise httpcore.ConnectError(f"Could not resolve {host}")


def _pool_options() -> dict[str, Any]:
    # The environment may name a CA bundle (SSL_CERT_FILE) but not a proxy: clients are built with
    # trust_env=False, since a proxy would resolve the host itself, past the address check.
    limits = {"max_connections": 100, "max_keepalive_connections": 20, "keepalive_expiry": 5.0}
    return {"ssl_context": httpx.create_ssl_context(trust_env=True), **limits}


def guarded_transport() -> httpx.HTTPTransport:
    """An httpx transport whose every connection goes through the address check. Other clients
    (e.g. an openai client for an org-supplied base URL) mount it to get the same guarantee."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx has no switch for the network backend, so give its transport a pool that uses ours.
    transport._pool = httpcore.ConnectionPool(network_backend=_GuardedBackend(), **_pool_options())
    return transport


@cache
def _client() -> httpx.Client:
    return httpx.Client(transport=guarded_transport(), trust_env=False, follow_redirects=False)


_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
_async_clients = weakref.WeakKeyDictionary()


def _async_client() -> httpx.AsyncClient:
    """One per event loop: an async connection pool cannot be shared across loops."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        transport = httpx.AsyncHTTPTransport(trust_env=False)
        transport._pool = httpcore.AsyncConnectionPool(  # type: ignore[assignment]
            network_backend=_AsyncGuardedBackend(), **_pool_options()
        )
        client = httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)
        _async_clients[loop] = client
    return client


# ---------------------------------------------------------------- requests


@dataclass
class _Hop:
    """The current request of a redirect chain, plus the limits that span the whole chain."""

    method: str
    url: httpx.URL
    headers: dict[str, str]
    body: dict[str, Any]
    deadline: float
    timeout: float
    max_bytes: int
    redirects_left: int

    @classmethod
    def start(cls, method: str, url: str, options: dict[str, Any]) -> _Hop:
        parsed = _parse(url)
        if options["params"]:
            parsed = parsed.copy_merge_params(options["params"])
        body, data = {}, options["data"]
        if options["json"] is not None:
            body["json"] = options["json"]
        if data is not None:
            body["content" if isinstance(data, bytes | str) else "data"] = data
        total = float(_or_setting(options["timeout"], "OUTBOUND_TIMEOUT_SECONDS"))
        return cls(
            method=method.upper(),
            url=parsed,
            headers=dict(options["headers"] or {}),
            body=body,
            deadline=time.monotonic() + total,
            timeout=total,
            max_bytes=_or_setting(options["max_bytes"], "OUTBOUND_MAX_RESPONSE_BYTES"),
            redirects_left=_or_setting(options["max_redirects"], "OUTBOUND_MAX_REDIRECTS"),
        )

    def build(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise OutboundHTTPError(f"Timed out after {self.timeout:g}s contacting {self.url.host}")
        logger.info("outbound %s %s", self.method, self.url.host)
        return client.build_request(
            self.method, self.url, headers=self.headers, timeout=httpx.Timeout(remaining), **self.body
        )

    def follow(self, response: httpx.Response) -> bool:
        """Move on to the redirect target, if this is a redirect; False when it is not."""
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location:
            return False
        if self.redirects_left <= 0:
            raise OutboundHTTPError(f"Too many redirects from {self.url.host}")
        target = _parse(self.url.join(location))
        if (target.scheme, target.host, target.port) != (self.url.scheme, self.url.host, self.url.port):
            self.headers = {}  # caller headers may hold credentials meant for the first host only
        if response.status_code == 303 or (response.status_code in (301, 302) and self.method == "POST"):
            self.method = "HEAD" if self.method == "HEAD" else "GET"
            self.body = {}
        self.url, self.redirects_left = target, self.redirects_left - 1
        return True

    def check(self, response: httpx.Response, received: int) -> None:
        declared = response.headers.get("content-length", "") if self.method != "HEAD" else ""
        if received > self.max_bytes or (declared.isdigit() and int(declared) > self.max_bytes):
            raise OutboundHTTPError(f"Response from {self.url.host} exceeds {self.max_bytes} bytes")
        if time.monotonic() > self.deadline:
            raise OutboundHTTPError(f"Timed out after {self.timeout:g}s reading from {self.url.host}")

    def result(self, response: httpx.Response, content: bytearray) -> SafeResponse:
        return SafeResponse(
            status_code=response.status_code,
            headers=response.headers,
            content=bytes(content),
            url=str(self.url),
            encoding=response.encoding or "utf-8",
        )

    def error(self, exc: httpx.HTTPError) -> OutboundHTTPError:
        if isinstance(exc, httpx.TimeoutException):
            return OutboundHTTPError(f"Timed out after {self.timeout:g}s contacting {self.url.host}")
        return OutboundHTTPError(f"Request to {self.url.host} failed: {type(exc).__name__}: {exc}")


def _or_setting(value: Any, name: str) -> Any:
    return value if value is not None else getattr(settings, name)


def safe_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    max_redirects: int | None = None,
) -> SafeResponse:
    """Send one request to a user-configured URL and read the whole body. Raises UnsafeURLError
    for a refused URL or address (at any hop) and OutboundHTTPError for timeouts, oversized
    bodies, too many redirects and network failures. Error statuses are returned, not raised.
    `data` is a form dict, or bytes/str sent as the raw body."""
    options = {k: v for k, v in locals().items() if k not in ("method", "url")}
    hop, client = _Hop.start(method, url, options), _client()
    while True:
        try:
            response = client.send(hop.build(client), stream=True)
            try:
                if hop.follow(response):
                    continue
                content = bytearray()
                hop.check(response, 0)
                for chunk in response.iter_bytes():
                    content.extend(chunk)
                    hop.check(response, len(content))
                return hop.result(response, content)
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise hop.error(exc)


async def asafe_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    max_redirects: int | None = None,
) -> SafeResponse:
    """The async twin of `safe_request`, with the same checks and errors."""
    options = {k: v for k, v in locals().items() if k not in ("method", "url")}
    hop, client = _Hop.start(method, url, options), _async_client()
    while True:
        try:
            response = await client.send(hop.build(client), stream=True)
            try:
                if hop.follow(response):
                    continue
                content = bytearray()
                hop.check(response, 0)
                async for chunk in response.aiter_bytes():
                    content.extend(chunk)
                    hop.check(response, len(content))
                return hop.result(response, content)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise hop.error(exc)
