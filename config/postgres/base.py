"""Django's PostgreSQL backend, plus statements that travel with the COMMIT.

A statement that locks a hot row (the organization's balance row, which every run passes twice) keeps
that lock until its transaction commits. Sent the usual way, the lock is held while the result comes
back, while the thread waits for the GIL to read it (a worker has hundreds of threads), and while the
COMMIT goes out: every other run of the organization queues behind that. `send_with_commit()` queues
the statement instead; the commit then sends it and the COMMIT in one flight (psycopg's pipeline
mode), so the lock lives only inside the server, for the time of the statement and the commit.

Writes whose results nothing reads before the commit may ride along too (`prepared.update` and
`prepared.insert` with `at_commit`: a run's final update and events), each saving its round trip.
A transaction that is all such statements (a run's rows on the web, its final transaction in the
worker) goes out whole in one flight, its BEGIN included (`_whole_transaction`).

The statement runs last in its transaction, after everything the block executed. Its rows go to a
callback that runs after the commit, first among the on-commit hooks (it may use the database). An
error in the statement fails the commit: the transaction is rolled back and the error raised where the
outermost `atomic` block ends, as any failed commit is.

Only the outermost atomic block can hold such a statement (inside a savepoint, or in a test case's
wrapping transaction, there is no commit to ride with): elsewhere `send_with_commit()` returns False
and the caller runs the statement itself.

The hot statements of `config.prepared` (fixed SQL, run on every request, run or step) go through
`prepared_cursor()`: server-side binding, and the statement prepared on the server the first time a
connection runs it. Planning was most of the server's time for them (0.21 ms of planning against
0.03 ms of execution for a step's claim), and client-side binding spent the client's time quoting
values into the SQL: prepared, the claim costs about a third of both. Everything else keeps Django's
client-side binding. `DB_PREPARED_STATEMENTS=false` turns it off, for a pooler (PgBouncer in
transaction mode before 1.21) that cannot keep a connection's prepared statements.

With the connection pool and health checks on, Django has the pool check every connection it hands
out with a round trip to the server, and a request or a run takes one several times. Here a
connection handed back less than `IDLE_CHECK` seconds ago goes out as it is; one that sat idle longer
(where a server restart or a dropped socket would show) is checked as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import partial
from time import monotonic
from typing import Any

from django.conf import settings
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base, operations
from django.utils.asyncio import async_unsafe
from psycopg import DataError, pq

Rows = list[tuple[Any, ...]]
IDLE_CHECK = 5.0  # seconds
# Statements are prepared only when asked (`PreparedCursor`); psycopg needs a threshold to allow it
# at all, and this one is never reached by the server-binding cursors that do not ask.
PREPARE_THRESHOLD = 1 << 30
PREPARED_MAX = 256  # prepared statements a connection keeps (psycopg's default is 100)


# Defined by Django with psycopg 3 only, so not in the stubs.
_ServerBindingCursor: Any = base.ServerBindingCursor  # type: ignore[attr-defined]
_register_tzloader: Any = base.register_tzloader  # type: ignore[attr-defined]


class PreparedCursor(_ServerBindingCursor):
    """Server-side binding, and the statement prepared on the server the first time the connection
    runs it (psycopg keeps the names per connection)."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, **kwargs: Any) -> Any:
        return super().execute(query, params, prepare=True if prepare is None else prepare, **kwargs)


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor: Any, sql: str, params: Any) -> str:
        if isinstance(cursor, PreparedCursor):  # the debug log's SQL, with its values, as Django's own
            try:
                return str(self.compose_sql(sql, params))
            except DataError:
                return sql  # a value it cannot write out: the SQL with its placeholders
        return super().last_executed_query(cursor, sql, params)  # type: ignore[no-any-return]


def prepares() -> bool:
    return bool(getattr(settings, "DB_PREPARED_STATEMENTS", True))


_returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def check_if_idle(conn: Any) -> None:
    """The pool's check before it hands a connection out (raises if the connection is broken)."""
    from psycopg_pool import ConnectionPool

    returned = _returned.get(conn)
    if returned is not None and monotonic() - returned < IDLE_CHECK:
        return
    ConnectionPool.check_connection(conn)


def _execute(cursors: list[Any], queued: Sequence[tuple[str, Sequence[Any], Any, Any]]) -> None:
    for cursor, (sql, params, *_) in zip(cursors, queued, strict=True):
        cursor.execute(sql, params)


def _whole_transaction(
    conn: Any, cursors: list[Any], queued: Sequence[tuple[str, Sequence[Any], Any, Any]]
) -> None:
    """Nothing ran in this transaction before its COMMIT (psycopg has not sent its BEGIN yet): the
    BEGIN, the statements and the COMMIT go out in one flight. Left to psycopg, the BEGIN would be a
    round trip of its own (it waits for its answer, in a pipeline too) and a COMMIT queued before it
    would be skipped; so psycopg is put in autocommit for the flight (no command of its own) and the
    transaction's commands are sent here, then it is put back. On an error the transaction is rolled
    back here, before psycopg leaves autocommit (it cannot while a transaction is open), and the
    error is raised as any failed commit's."""
    if conn.isolation_level is not None or conn.read_only is not None or conn.deferrable is not None:
        _execute(cursors, queued)  # a BEGIN with options: psycopg's own, a round trip
        conn.commit()
        return
    conn.autocommit = True
    try:
        with conn.pipeline():
            conn.execute("BEGIN", prepare=False)
            _execute(cursors, queued)
            conn.execute("COMMIT", prepare=False)
    except BaseException:
        if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE and not conn.closed:
            with suppress(Exception):
                conn.execute("ROLLBACK", prepare=False)
        raise
    finally:
        if conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            conn.autocommit = False


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.with_commit: list[tuple[str, Sequence[Any], Callable[[Rows], None], bool]] = []

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if prepares() and params.get("prepare_threshold") is None:
            params["prepare_threshold"] = PREPARE_THRESHOLD
        return params

    def _configure_connection(self, connection: Any) -> Any:
        connection.prepared_max = max(connection.prepared_max or 0, PREPARED_MAX)
        return super()._configure_connection(connection)  # type: ignore[misc]  # not in the stubs

    @async_unsafe
    def prepared_cursor(self) -> Any:
        """`cursor()`, for a statement of fixed SQL run again and again: prepared on the server."""
        if not prepares():
            return self.cursor()
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            return self._prepare_cursor(self._server_cursor())  # type: ignore[attr-defined]  # not in the stubs

    def _server_cursor(self) -> Any:
        cursor = PreparedCursor(self.connection)
        # As `create_cursor`: the cursor's time zone, where the connection's differs.
        tzloader = self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, pq.Format.TEXT)  # type: ignore[union-attr]
        if self.timezone != tzloader.timezone:
            _register_tzloader(self.timezone, cursor)
        return cursor

    def send_with_commit(
        self, sql: str, params: Sequence[Any], done: Callable[[Rows], None], prepare: bool = False
    ) -> bool:
        """Queue `sql` to run with this transaction's COMMIT; `done(rows)` is called after the commit.
        False, and nothing queued, when not directly in the outermost atomic block. `prepare`: the
        SQL is fixed and run often, so it is prepared on the server (`prepared_cursor`)."""
        if not self.in_atomic_block or len(self.atomic_blocks) != 1 or self.needs_rollback:
            return False
        self.with_commit.append((sql, params, done, prepare and prepares()))
        return True

    def _commit(self) -> None:
        queued, self.with_commit = self.with_commit, []
        if not queued or self.connection is None:
            return super()._commit()  # type: ignore[misc]  # not in the stubs
        conn = self.connection
        with self.wrap_database_errors:
            cursors = [self._server_cursor() if prepare else conn.cursor() for *_, prepare in queued]
            if conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
                _whole_transaction(conn, cursors, queued)
            else:
                with conn.pipeline():
                    _execute(cursors, queued)
                    conn.commit()
            results = [cursor.fetchall() if cursor.description else [] for cursor in cursors]
            for cursor in cursors:
                cursor.close()
        # First among the on-commit hooks, which run once Django is back in autocommit.
        hooks: list[Any] = [
            (set(), partial(done, rows), False) for (_, _, done, _), rows in zip(queued, results, strict=True)
        ]
        self.run_on_commit[:0] = hooks

    def _rollback(self) -> None:
        self.with_commit = []
        return super()._rollback()  # type: ignore[misc]  # not in the stubs

    def _close(self) -> None:
        self.with_commit = []
        if self.connection is not None and self.settings_dict["OPTIONS"].get("pool"):
            _returned[self.connection] = monotonic()
        return super()._close()  # type: ignore[misc]  # not in the stubs

    @property
    def pool(self) -> Any:
        """Django's pool, with `check_if_idle` as its health check."""
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options or not self.settings_dict["CONN_HEALTH_CHECKS"]:
            return super().pool
        pools: dict[str, Any] = self._connection_pools  # type: ignore[attr-defined]  # not in the stubs
        if self.alias not in pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                from django.core.exceptions import ImproperlyConfigured

                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            from psycopg_pool import ConnectionPool

            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # as Django's: it sets the mode it wants later
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,  # type: ignore[attr-defined]
                check=check_if_idle,
                **({} if options is True else options),
            )
            pools.setdefault(self.alias, pool)
        return pools[self.alias]
