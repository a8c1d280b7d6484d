"""config/postgres: a statement queued with `send_with_commit` is sent with the COMMIT of the
outermost atomic block, in one flight, after everything the block ran; its rows reach a callback after
the commit; an error in it fails the commit and undoes the whole block."""

from __future__ import annotations

import pytest
from django.db import DataError, connection, transaction

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def flight_table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE flight_test (n integer NOT NULL)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE flight_test")


def numbers() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT n FROM flight_test ORDER BY n")
        return [n for (n,) in cursor.fetchall()]


def test_the_statement_runs_last_and_its_rows_come_after_the_commit(flight_table):
    seen: list[object] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO flight_test VALUES (1)")
        queued = connection.send_with_commit(
            "INSERT INTO flight_test SELECT max(n) + 1 FROM flight_test RETURNING n", [], seen.append
        )
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO flight_test VALUES (%s)", [5])  # runs before the queued one
        assert queued is True and seen == [] and numbers() == [1, 5]

    assert seen == [[(6,)]]
    assert numbers() == [1, 5, 6]


def test_its_callback_runs_first_among_the_on_commit_hooks_and_may_use_the_database(flight_table):
    order: list[str] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO flight_test VALUES (1)")
        transaction.on_commit(lambda: order.append("hook"))
        connection.send_with_commit(
            "INSERT INTO flight_test VALUES (%s) RETURNING n",
            [2],
            lambda rows: order.append(f"done {rows[0][0]}, table {numbers()}"),
        )

    assert order == ["done 2, table [1, 2]", "hook"]


def test_an_error_in_the_statement_fails_the_commit_and_undoes_the_block(flight_table):
    called: list[object] = []
    with pytest.raises(DataError, match="division by zero"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO flight_test VALUES (1)")
        connection.send_with_commit("INSERT INTO flight_test VALUES (1 / %s)", [0], called.append)

    assert called == [] and numbers() == []
    # The connection is fine afterwards, and nothing is left queued.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO flight_test VALUES (3)")
    assert numbers() == [3] and connection.with_commit == []


def test_a_block_that_raises_drops_its_statement(flight_table):
    called: list[object] = []
    with pytest.raises(RuntimeError), transaction.atomic():
        connection.send_with_commit("INSERT INTO flight_test VALUES (7)", [], called.append)
        raise RuntimeError("changed my mind")

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO flight_test VALUES (1)")
    assert called == [] and numbers() == [1]


def test_alone_in_its_transaction_the_statement_still_commits(flight_table):
    seen: list[object] = []
    with transaction.atomic():
        connection.send_with_commit("INSERT INTO flight_test VALUES (4) RETURNING n", [], seen.append)

    assert seen == [[(4,)]] and numbers() == [4]
    assert not connection.in_atomic_block and connection.get_autocommit()


def test_alone_in_their_transaction_an_error_undoes_them_all_and_the_connection_goes_on(flight_table):
    # Nothing ran before them, so the BEGIN goes out in their flight (config.postgres._whole_transaction).
    called: list[object] = []
    with pytest.raises(DataError, match="division by zero"), transaction.atomic():
        connection.send_with_commit("INSERT INTO flight_test VALUES (%s)", [1], called.append)
        connection.send_with_commit("INSERT INTO flight_test VALUES (1 / %s)", [0], called.append)

    assert called == [] and numbers() == []
    assert connection.get_autocommit() and not connection.in_atomic_block
    with transaction.atomic():  # psycopg is out of autocommit again: this block is one transaction
        connection.send_with_commit("INSERT INTO flight_test VALUES (%s)", [2], called.append)
        connection.send_with_commit("INSERT INTO flight_test VALUES (%s) RETURNING n", [3], called.append)
        assert connection.connection.autocommit is False
    with pytest.raises(RuntimeError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO flight_test VALUES (9)")
        raise RuntimeError("undone: the block was a transaction")
    assert called == [[], [(3,)]] and numbers() == [2, 3]


def test_only_the_outermost_block_queues(flight_table):
    assert connection.send_with_commit("SELECT 1", [], print) is False  # autocommit: no block at all
    with transaction.atomic(), transaction.atomic():  # a savepoint: no commit of its own to ride with
        assert connection.send_with_commit("SELECT 1", [], print) is False
    assert connection.with_commit == []


@pytest.mark.django_db(transaction=False)
def test_a_test_case_transaction_is_not_the_outermost_block():
    with transaction.atomic():
        assert connection.send_with_commit("SELECT 1", [], print) is False


# ------------------------------------------------------------------ the pool's health check


@pytest.fixture
def pooled():
    from config.postgres.base import DatabaseWrapper

    settings_dict = {
        **connection.settings_dict,
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 1}},
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
    }
    wrapper = DatabaseWrapper(settings_dict)  # tests run without a pool: this is the only one, closed after
    yield wrapper
    wrapper.close()
    wrapper.close_pool()


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_connection_back_a_moment_ago_goes_out_unchecked_and_an_idle_one_is_checked(pooled):
    from config.postgres.base import IDLE_CHECK, _returned

    pooled.ensure_connection()
    first = pooled.connection
    pid = first.info.backend_pid
    pooled.close()  # back in the pool, stamped
    assert first in _returned
    _terminate(pid)

    pooled.ensure_connection()  # back a moment ago: handed out without a round trip
    assert pooled.connection is first
    pooled.close()

    _returned[first] = _returned[first] - IDLE_CHECK - 1  # as if it had sat idle
    pooled.ensure_connection()  # checked: found dead, replaced
    assert pooled.connection is not first
    with pooled.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
