"""Where billing meets the runs: reserve before an agent run starts, settle in its final transaction.

Both ride with the COMMIT of the transaction they are called in when that is the outermost one
(`at_commit`, billing/ledger.py): the organization's balance row, which every run passes twice, is
then locked only inside the database.

Keys make every step idempotent: `run:<id>:reserve`, `run:<id>:reserve:release`, `run:<id>:usage`.
Usage entries name the user, the agent and (for a workflow step) the workflow run, so the org can see
who spent what.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Exists, Model, OuterRef, Q, Subquery

from billing import caps, ledger, limits, pricing
from billing.models import ZERO, BillingAccount, CreditTransaction
from config import prepared
from config.prepared import Prepared


def _run_checks(kinds: tuple[type[Model], ...]) -> Prepared[BillingAccount]:
    def build(org_id: int, agent_id: int) -> Any:
        keys = {f"next_key_{n}": prepared.next_id(kind) for n, kind in enumerate(kinds)}
        return (
            BillingAccount.objects.filter(organization_id=org_id)
            .select_related("plan")
            .annotate(agent_capped=caps.has_cap(agent_id=agent_id), **keys)
        )

    return Prepared(build, int, int)


_RUN_CHECKS: dict[tuple[type[Model], ...], Prepared[BillingAccount]] = {}


def begin_agent_run(
    *, org_id: int, agent_id: int, estimate: Decimal, keys: tuple[type[Model], ...]
) -> list[int]:
    """What billing checks before an agent run is created, and the keys of the rows it creates, in
    one round trip: the billing account with its plan (the monthly runs limit), whether the agent has
    a cost cap, and a key for each model in `keys` (`prepared.next_ids`). A capped agent's cap is then
    checked as `caps.check_agent_run` does. Call it just before the transaction that creates the run
    (the keys are taken whether or not that commits; the checks lock nothing)."""
    checks = _RUN_CHECKS.get(keys)
    if checks is None:
        checks = _RUN_CHECKS.setdefault(keys, _run_checks(keys))
    account = checks.first(org_id, agent_id)
    if account is None:  # the organization's first billable act: the account is created now
        limits.check(org_id, "runs_per_month")
        ids = prepared.next_ids(*keys)
        caps.check_agent_run(org_id, agent_id, estimate)
        return ids
    limits.check(org_id, "runs_per_month", account=account)
    if account.agent_capped:  # type: ignore[attr-defined]
        caps.check_agent_run(org_id, agent_id, estimate)
    return [int(getattr(account, f"next_key_{n}")) for n in range(len(keys))]


def reserve_agent_run(*, run: Any, model: str, estimate: Decimal) -> None:
    """Hold the run's estimated cost. Raises ledger.InsufficientCredits, or, when the hold rides with
    the commit, fails that commit in a way `ledger.refusal()` recognizes. Call it last in the
    transaction that creates the run. `estimate`: `pricing.estimate_run` of the run."""
    ledger.reserve(
        org=run.organization_id,
        amount=estimate,
        key=run_keys(run.pk)[0],
        description=f"Reserved for run {run.pk}",
        at_commit=True,
        run=run,
        agent_id=run.agent_id,
        user_id=run.user_id,
        model=model,
    )


def _workflow_refs(run: Any) -> dict[str, Any]:
    if run.source != "workflow":
        return {}
    from workflows.models import StepRun

    # The step is running while its agent runs: that filter keeps the lookup on the few running steps.
    step = (
        StepRun.objects.filter(status=StepRun.Status.RUNNING, state__agent_run=run.pk)
        .select_related("run")
        .first()
    )
    if step is None:
        return {}
    return {"workflow_run_id": step.run_id, "workflow_id": step.run.workflow_id}


def run_keys(run_id: int) -> tuple[str, str, str]:
    """The keys of an agent run's reservation, its release and its usage."""
    reserve = f"run:{run_id}:reserve"
    return reserve, f"{reserve}:release", f"run:{run_id}:usage"


def settle_reads(reserve: Any, release: Any, usage: Any) -> dict[str, Any]:
    """Annotations for the query that loads a run to execute (keys from `run_keys`): what the settle
    looks up before it moves credits (the reservation's amount, and whether its release or usage is
    written), read with the claim, so the run's final transaction has no round trip of its own for it.
    Between the claim and the settle only that run's worker writes these entries, but for the workflow
    sweep releasing a run it took for orphaned: that settle then fails as partly written, and the
    settle of the failed run that follows looks the entries up again (`_known` gives them once)."""
    entries = CreditTransaction.objects.filter(organization_id=OuterRef("organization_id")).order_by()
    return {
        "settle_held": Subquery(
            entries.filter(idempotency_key=reserve, type=ledger.T.RESERVATION).values("amount")[:1]
        ),
        "settle_done": Exists(entries.filter(Q(idempotency_key=release) | Q(idempotency_key=usage))),
    }


def _known(run: Any) -> dict[str, tuple[str, Decimal]] | None:
    """The entries `settle_reads` found for this run, as `ledger.settle(known=...)` takes them, once:
    None when the run was loaded without them or a settle used them already (a second settle, after
    a final transaction that failed, looks the entries up again)."""
    if not hasattr(run, "settle_held"):
        return None
    held, done = run.settle_held, run.settle_done
    del run.settle_held, run.settle_done
    reserve, release, _ = run_keys(run.pk)
    known: dict[str, tuple[str, Decimal]] = {}
    if held is not None:
        known[reserve] = (ledger.T.RESERVATION, held)
    if done:  # settled before: `settle` then goes entry by entry, idempotently
        known[release] = (ledger.T.RELEASE, ZERO)
    return known


def settle_agent_run(
    *, run: Any, credits: Decimal, model: str, input_tokens: int, output_tokens: int, status: str
) -> Decimal | None:
    """Release the reservation and charge what the run used. Call it last in the run's final
    transaction. What was charged, or None when that is known only after the commit."""
    reserve, _, usage = run_keys(run.pk)
    return ledger.settle(
        org=run.organization_id,
        reservation_key=reserve,
        usage=credits,
        usage_key=usage,
        at_commit=True,
        known=_known(run),
        description=f"Run {run.pk} ({status}): {input_tokens} in / {output_tokens} out tokens on {model}",
        run=run,
        agent_id=run.agent_id,
        user_id=run.user_id,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        **_workflow_refs(run),
    )


def charge_embeddings(*, org_id: int, document_id: int, model: str, tokens: int, key: str) -> Decimal:
    """Embedding tokens of an ingested document (#4), billed once per document version (key)."""
    cost = pricing.token_cost(model, tokens, 0)
    if cost <= 0:
        return Decimal(0)
    entry = ledger.post(
        org=org_id,
        type=ledger.T.USAGE,
        amount=-cost,
        key=key,
        description=f"Embeddings for document {document_id}: {tokens} tokens on {model}",
        allow_partial=True,
        model=model,
        input_tokens=tokens,
    )
    return -entry.amount
