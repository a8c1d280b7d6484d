"""config/postgres + config/prepared: the hot statements are prepared on the server the first time a
connection runs them (server-side binding), big inserts and everything else are not, the debug log
still shows their SQL with its values, and DB_PREPARED_STATEMENTS=false turns it off."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from config import prepared
from config.prepared import Prepared
from tests.config.conftest import new_run
from workflows.models import WorkflowRun

pytestmark = pytest.mark.django_db


def server_prepared(prefix: str) -> list[tuple[str, int, int]]:
    """This connection's prepared statements starting with `prefix`: (statement, generic, custom plans)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE NOT from_sql AND statement LIKE %s",
            [prefix.replace("%", r"\%").replace("_", r"\_") + "%"],
        )
        return cursor.fetchall()


def test_a_prepared_read_is_prepared_once_and_reads_the_same_rows(workflow):
    runs = prepared.insert([new_run(workflow, error="first"), new_run(workflow, error="second")])
    by_error = Prepared(lambda text: WorkflowRun.objects.filter(error=text, source="manual"), str)
    found = [by_error.first(text) for text in ("first", "second", "first", "nothing")]
    assert [r.pk if r else None for r in found] == [runs[0].pk, runs[1].pk, runs[0].pk, None]
    statements = [s for s in server_prepared('SELECT "workflows_workflowrun"."id"') if '"error" = $1' in s[0]]
    assert len(statements) == 1  # one name on the server for the four calls, values bound as $1, $2
    statement, generic, custom = statements[0]
    assert "'first'" not in statement and generic + custom == 4


def test_light_writes_are_prepared_and_an_insert_of_many_rows_is_not(workflow):
    (run,) = prepared.insert([new_run(workflow)])
    for n in range(3):
        prepared.update(WorkflowRun, where={"id": run.pk}, values={"error": f"e{n}", "output_tokens": n})
    run.refresh_from_db()
    assert (run.error, run.output_tokens) == ("e2", 2)
    updates = server_prepared('UPDATE "workflows_workflowrun" SET "error" = $1, "output_tokens" = $2')
    assert len(updates) == 1 and sum(updates[0][1:]) == 3
    inserts = server_prepared('INSERT INTO "workflows_workflowrun"')
    rows_per_insert = {s.count("), (") + 1 for s, *_ in inserts}
    assert 1 in rows_per_insert

    many = prepared.insert([new_run(workflow) for _ in range(prepared._MAX_PREPARED_ROWS + 1)])
    assert all(r.pk for r in many) and WorkflowRun.objects.filter(pk__in=[r.pk for r in many]).count() == 9
    rows_per_insert = {
        s.count("), (") + 1 for s, *_ in server_prepared('INSERT INTO "workflows_workflowrun"')
    }
    assert prepared._MAX_PREPARED_ROWS + 1 not in rows_per_insert  # a shape per row count: not kept


def test_the_debug_log_shows_the_sql_with_its_values(workflow):
    (run,) = prepared.insert([new_run(workflow)])
    with CaptureQueriesContext(connection) as queries:
        prepared.update(WorkflowRun, where={"id": run.pk}, values={"error": "logged"})
    assert len(queries) == 1
    assert (
        queries[0]["sql"] == f'UPDATE "workflows_workflowrun" SET "error" = \'logged\' WHERE "id" = {run.pk}'
    )


@override_settings(DB_PREPARED_STATEMENTS=False)
def test_turned_off_nothing_is_prepared_and_the_statements_still_run(workflow):
    (run,) = prepared.insert([new_run(workflow)])
    by_output = Prepared(lambda pk: WorkflowRun.objects.filter(pk=pk, output__isnull=True), int)
    assert by_output.first(run.pk) == run
    assert prepared.update(WorkflowRun, where={"id": run.pk}, values={"error": "off", "last_seq": 3}) == 1
    assert server_prepared('UPDATE "workflows_workflowrun" SET "error" = $1, "last_seq" = $2') == []
    assert [
        s for s, *_ in server_prepared('SELECT "workflows_workflowrun"."id"') if '"output" IS NULL' in s
    ] == []


@pytest.mark.django_db(transaction=True)
def test_a_write_sent_with_the_commit_is_prepared_too(workflow):
    (run,) = prepared.insert([new_run(workflow)])
    for n in range(2):
        with transaction.atomic():
            WorkflowRun.objects.filter(pk=run.pk).update(output_tokens=n)  # the block's own statement
            queued = prepared.update(
                WorkflowRun,
                where={"id": run.pk},
                values={"error": f"c{n}", "input_tokens": n},
                at_commit=True,
            )
            assert queued is None
    run.refresh_from_db()
    assert (run.error, run.input_tokens, run.output_tokens) == ("c1", 1, 1)
    statements = server_prepared('UPDATE "workflows_workflowrun" SET "error" = $1, "input_tokens" = $2')
    assert len(statements) == 1 and sum(statements[0][1:]) == 2
