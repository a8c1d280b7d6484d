"""config.prepared.update / insert: the light writes leave the rows the ORM's own writes leave; and
`Prepared.rows` reads `values_list` rows back as the ORM does."""

from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Count, Exists, OuterRef
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config import prepared
from config.prepared import Prepared
from tests.config.conftest import new_run
from workflows.models import StepRun, WorkflowRun

pytestmark = pytest.mark.django_db


def _columns(obj):
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_insert_writes_what_bulk_create_writes_and_sets_primary_keys(workflow):
    ours = prepared.insert(
        [new_run(workflow, cost=Decimal("1.5")), new_run(workflow, context={"vars": {"a": 1}})]
    )
    theirs = WorkflowRun.objects.bulk_create(
        [new_run(workflow, cost=Decimal("1.5")), new_run(workflow, context={"vars": {"a": 1}})]
    )
    assert all(r.pk for r in ours) and ours[0].pk != ours[1].pk
    assert all(r._state.adding is False and r._state.db == "default" for r in ours)
    for mine, orm in zip(ours, theirs, strict=True):
        a, b = _columns(WorkflowRun.objects.get(pk=mine.pk)), _columns(WorkflowRun.objects.get(pk=orm.pk))
        for key in ("id", "created_at"):
            a.pop(key), b.pop(key)
        assert a == b
    assert WorkflowRun.objects.get(pk=ours[0].pk).cost == Decimal("1.5")
    assert WorkflowRun.objects.get(pk=ours[1].pk).context == {"vars": {"a": 1}}


def test_insert_refuses_saved_rows_and_mixed_models(workflow):
    (run,) = prepared.insert([new_run(workflow)])
    with pytest.raises(ValueError, match="new rows of one model"):
        prepared.insert([run])
    with pytest.raises(ValueError, match="new rows of one model"):
        prepared.insert([new_run(workflow), StepRun(run=run, node_id="x", node_type="end")])
    (key,) = prepared.next_ids(WorkflowRun)
    with pytest.raises(ValueError, match="with keys from next_ids or none"):
        prepared.insert([new_run(workflow, pk=key), new_run(workflow)])  # keyed and unkeyed rows together
    assert prepared.insert([]) == []


def test_next_ids_takes_a_key_per_model_from_its_sequence_and_insert_writes_it(workflow):
    a, b, step = prepared.next_ids(WorkflowRun, WorkflowRun, StepRun)
    assert b > a  # a model given twice: two keys
    (c,) = prepared.next_ids(WorkflowRun)
    assert c > b
    run = new_run(workflow, pk=b)
    prepared.insert([run])
    prepared.insert([StepRun(pk=step, run=run, node_id="start", node_type="trigger")])
    assert run._state.adding is False and run.pk == b
    assert WorkflowRun.objects.filter(pk=b).exists() and not WorkflowRun.objects.filter(pk=a).exists()
    assert StepRun.objects.get(pk=step).run_id == b
    (fresh,) = prepared.insert([new_run(workflow)])  # the database's own keys carry on past the taken ones
    assert fresh.pk > c


def test_update_sets_adds_and_matches_only_its_conditions(workflow):
    a, b = prepared.insert([new_run(workflow), new_run(workflow)])
    now = timezone.now()
    count = prepared.update(
        WorkflowRun,
        where={"id": a.pk, "status": WorkflowRun.Status.PENDING},
        values={
            "status": WorkflowRun.Status.RUNNING,
            "started_at": now,
            "output": ["x", {"y": 1}],
            "error": "",
        },
        add={"input_tokens": 7, "cost": Decimal("0.25")},
    )
    assert count == 1
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.status, a.started_at, a.output, a.input_tokens, a.cost) == (
        "running",
        now,
        ["x", {"y": 1}],
        7,
        Decimal("0.25"),
    )
    assert (b.status, b.output, b.input_tokens) == ("pending", None, 0)  # not touched
    # A condition that no longer holds updates nothing (a claim that lost its race).
    assert (
        prepared.update(WorkflowRun, where={"id": a.pk, "status": "pending"}, values={"status": "failed"})
        == 0
    )
    # `__in` takes a list; None is SQL NULL; adding again adds again.
    count = prepared.update(
        WorkflowRun,
        where={"id__in": [a.pk, b.pk]},
        values={"output": None},
        add={"input_tokens": 1},
    )
    assert count == 2
    assert list(
        WorkflowRun.objects.filter(pk__in=[a.pk, b.pk], output__isnull=True)
        .order_by("pk")
        .values_list("input_tokens", flat=True)
    ) == [8, 1]


def test_update_builds_its_sql_once_per_shape(workflow):
    (run,) = prepared.insert([new_run(workflow)])
    shapes = len(prepared._writes)
    for n in range(3):
        prepared.update(WorkflowRun, where={"id": run.pk}, values={"last_seq": n, "error": "e"})
    assert len(prepared._writes) == shapes + 1
    with CaptureQueriesContext(connection) as queries:
        prepared.update(WorkflowRun, where={"id": run.pk}, values={"last_seq": 9, "error": "e"})
    assert len(queries) == 1 and queries[0]["sql"].startswith('UPDATE "workflows_workflowrun" SET')
    run.refresh_from_db()
    assert run.last_seq == 9


def test_update_refuses_other_lookups_and_empty_writes(workflow):
    with pytest.raises(ImproperlyConfigured, match="equalities or __in"):
        prepared.update(WorkflowRun, where={"id__gt": 1}, values={"error": ""})
    with pytest.raises(ValueError, match="needs conditions"):
        prepared.update(WorkflowRun, where={}, values={"error": ""})
    with pytest.raises(ValueError, match="needs conditions"):
        prepared.update(WorkflowRun, where={"id": 1}, values={})


def test_rows_read_values_lists_like_the_orm_with_converters(workflow):
    a, b = prepared.insert(
        [new_run(workflow, cost=Decimal("2.5")), new_run(workflow, input={"deep": {"x": [1]}})]
    )

    def build(version_id):
        return (
            WorkflowRun.objects.filter(version_id=version_id)
            .order_by("-id")
            .values_list("id", "input", "cost", "workflow__name")[:5]
        )

    rows = Prepared(build, int)
    got = rows.rows(a.version_id)
    assert got == list(build(a.version_id))
    assert got[0] == (b.pk, {"deep": {"x": [1]}}, Decimal("0"), "Writes")  # JSON decoded, Decimal typed
    assert got[1][2] == Decimal("2.5")
    assert rows.rows(-1) == []


def test_a_large_insert_is_written_without_keeping_its_sql(workflow):
    shapes = len(prepared._writes)
    rows = prepared.insert([new_run(workflow, last_seq=n) for n in range(prepared._MAX_CACHED_ROWS + 1)])
    assert len(prepared._writes) == shapes
    assert sorted(
        WorkflowRun.objects.filter(pk__in=[r.pk for r in rows]).values_list("last_seq", flat=True)
    ) == list(range(prepared._MAX_CACHED_ROWS + 1))


@pytest.mark.django_db(transaction=True)
def test_writes_at_commit_go_out_with_the_commit_and_in_order(workflow):
    """In the outermost atomic block, `at_commit` writes wait for the COMMIT (a read inside the block
    does not see them yet); the rows are there, and the keys set, once it has committed."""
    from django.db import transaction

    (run,) = prepared.insert([new_run(workflow)])
    steps = [StepRun(run=run, node_id=n, node_type="end") for n in "ab"]
    with transaction.atomic():
        assert (
            prepared.update(WorkflowRun, where={"id": run.pk}, values={"status": "running"}, at_commit=True)
            is None
        )
        prepared.insert(steps, at_commit=True)
        assert WorkflowRun.objects.get(pk=run.pk).status == "pending"  # not sent yet
        assert [s.pk for s in steps] == [None, None]
        assert not StepRun.objects.filter(run=run).exists()
    assert WorkflowRun.objects.get(pk=run.pk).status == "running"
    assert all(s.pk for s in steps) and not any(s._state.adding for s in steps)
    assert sorted(StepRun.objects.filter(run=run).values_list("pk", flat=True)) == sorted(s.pk for s in steps)


@pytest.mark.django_db(transaction=True)
def test_writes_at_commit_run_at_once_where_no_commit_can_carry_them(workflow):
    """Outside a transaction, and inside a savepoint, `at_commit` writes are ordinary writes."""
    from django.db import transaction

    (run,) = prepared.insert([new_run(workflow)])
    assert (
        prepared.update(WorkflowRun, where={"id": run.pk}, values={"status": "running"}, at_commit=True) == 1
    )
    with transaction.atomic(), transaction.atomic():
        assert (
            prepared.update(WorkflowRun, where={"id": run.pk}, values={"status": "waiting"}, at_commit=True)
            == 1
        )
        assert WorkflowRun.objects.get(pk=run.pk).status == "waiting"
        (step,) = prepared.insert(
            [StepRun(run=run, node_id="x", node_type="end")],
            at_commit=True,
        )
        assert step.pk is not None


# ------------------------------------------------------------------ first_updated

RUN_WITH_WORKFLOW = Prepared(
    lambda pk: (
        WorkflowRun.objects.select_related("workflow")
        .filter(pk=pk)
        .annotate(has_steps=Exists(StepRun.objects.filter(run_id=OuterRef("pk"))))
    ),
    int,
)


def test_first_updated_claims_and_loads_in_one_statement_with_the_new_values(workflow):
    (run,) = prepared.insert([new_run(workflow, status=WorkflowRun.Status.PENDING)])
    with CaptureQueriesContext(connection) as queries:
        got = RUN_WITH_WORKFLOW.first_updated(
            {"id": run.pk, "status": WorkflowRun.Status.PENDING},
            {"status": WorkflowRun.Status.RUNNING},
            run.pk,
        )
    assert len(queries) == 1
    assert got is not None and got.pk == run.pk and got.status == WorkflowRun.Status.RUNNING
    assert got.workflow.name == "Writes" and got.has_steps is False  # related objects and annotations
    assert WorkflowRun.objects.get(pk=run.pk).status == WorkflowRun.Status.RUNNING


def test_first_updated_gives_nothing_when_the_update_matches_nothing(workflow):
    (run,) = prepared.insert([new_run(workflow, status=WorkflowRun.Status.PENDING)])
    claim = ({"id": run.pk, "status": WorkflowRun.Status.PENDING}, {"status": WorkflowRun.Status.RUNNING})
    assert RUN_WITH_WORKFLOW.first_updated(*claim, run.pk) is not None
    assert RUN_WITH_WORKFLOW.first_updated(*claim, run.pk) is None  # claimed already: a second try gets none
    assert RUN_WITH_WORKFLOW.first_updated({"id": 0}, {"error": "x"}, 0) is None
    assert WorkflowRun.objects.get(pk=run.pk).error == ""


def test_first_updated_refuses_a_queryset_that_groups_rows(workflow):
    counted = Prepared(lambda pk: WorkflowRun.objects.filter(pk=pk).annotate(n=Count("steps")), int)
    with pytest.raises(ImproperlyConfigured):
        counted.first_updated({"id": 1}, {"error": "x"}, 1)
