"""Ledger moves sent with the COMMIT of the run's transaction (`at_commit`, config/postgres), on real
PostgreSQL with real commits: a hold moves when its block commits, one that does not fit undoes the
whole block, a settle charges after the commit, and fifty racing holds never overdraw."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from billing import ledger, moves
from billing.models import CreditTransaction
from tests.billing.test_ledger import fresh_org

T = CreditTransaction.Type


@pytest.mark.django_db(transaction=True)
def test_a_hold_sent_with_the_commit_moves_the_balance_when_the_block_commits():
    org = fresh_org()
    with transaction.atomic():
        held = ledger.reserve(org=org, amount=4, key="run:1:reserve", at_commit=True)
        assert held is not None and held.amount == Decimal("4")
        assert ledger.balance(org) == Decimal("10")  # not moved yet: it goes with the COMMIT
        assert connection.with_commit

    entry = CreditTransaction.objects.get(organization=org, idempotency_key="run:1:reserve")
    assert (entry.type, entry.amount, entry.balance_after) == (T.RESERVATION, Decimal("-4"), Decimal("6"))
    assert ledger.balance(org) == Decimal("6") == ledger.ledger_sum(org)


@pytest.mark.django_db(transaction=True)
def test_a_hold_that_does_not_fit_fails_the_commit_and_undoes_the_whole_block():
    from accounts.models import Organization

    org = fresh_org()
    with pytest.raises(IntegrityError) as failed, transaction.atomic():
        Organization.objects.filter(pk=org.pk).update(name="Renamed in the same transaction")
        ledger.reserve(org=org, amount=25, key="run:2:reserve", at_commit=True)

    refused = ledger.refusal(failed.value, org, Decimal("25"))
    assert isinstance(refused, ledger.InsufficientCredits)
    assert (refused.needed, refused.available) == (Decimal("25"), Decimal("10"))
    assert "needs about 25.00" in str(refused) and "has 10.00" in str(refused)
    assert Organization.objects.get(pk=org.pk).name == "Ledger Co"  # undone with the hold
    assert not CreditTransaction.objects.filter(organization=org, idempotency_key="run:2:reserve").exists()
    assert ledger.balance(org) == Decimal("10") == ledger.ledger_sum(org)


@pytest.mark.django_db(transaction=True)
def test_only_a_failed_balance_check_is_a_refusal():
    org = fresh_org()
    with pytest.raises(IntegrityError) as failed, transaction.atomic():
        CreditTransaction.objects.create(
            organization=org, type=T.GRANT, amount=1, balance_after=1, idempotency_key="signup"
        )
    assert ledger.refusal(failed.value, org, 1) is None
    assert ledger.refusal(RuntimeError("no"), org, 1) is None


@pytest.mark.django_db(transaction=True)
def test_a_settle_sent_with_the_commit_releases_and_charges_after_it():
    org = fresh_org()
    ledger.reserve(org=org, amount=4, key="run:3:reserve")
    with transaction.atomic():
        charged = ledger.settle(
            org=org, reservation_key="run:3:reserve", usage=3, usage_key="run:3:usage", at_commit=True
        )
        assert charged is None  # known after the commit
        assert ledger.balance(org) == Decimal("6")

    entries = CreditTransaction.objects.filter(organization=org).order_by("id")
    assert [(e.type, e.amount, e.balance_after) for e in entries][1:] == [
        (T.RESERVATION, Decimal("-4"), Decimal("6")),
        (T.RELEASE, Decimal("4"), Decimal("10")),
        (T.USAGE, Decimal("-3"), Decimal("7")),
    ]
    assert ledger.balance(org) == Decimal("7") == ledger.ledger_sum(org)


@pytest.mark.django_db(transaction=True)
def test_a_settle_sent_with_the_commit_charges_only_what_there_is():
    org = fresh_org()
    ledger.reserve(org=org, amount=4, key="run:4:reserve")
    with transaction.atomic():
        ledger.settle(
            org=org, reservation_key="run:4:reserve", usage=50, usage_key="run:4:usage", at_commit=True
        )

    usage = CreditTransaction.objects.get(organization=org, idempotency_key="run:4:usage")
    assert (usage.amount, usage.balance_after) == (Decimal("-10"), Decimal("0"))
    assert ledger.balance(org) == Decimal("0") == ledger.ledger_sum(org)


@pytest.mark.django_db(transaction=True)
def test_a_settle_replayed_with_at_commit_goes_entry_by_entry_at_once_and_charges_once():
    org = fresh_org()
    ledger.reserve(org=org, amount=4, key="run:5:reserve")
    ledger.settle(org=org, reservation_key="run:5:reserve", usage=3, usage_key="run:5:usage")
    with transaction.atomic():
        charged = ledger.settle(
            org=org, reservation_key="run:5:reserve", usage=3, usage_key="run:5:usage", at_commit=True
        )
        assert connection.with_commit == []

    assert charged == Decimal("3")
    assert ledger.balance(org) == Decimal("7") == ledger.ledger_sum(org)


@pytest.mark.django_db(transaction=True)
def test_entries_partly_written_already_fail_a_move_sent_with_the_commit():
    """Its result is read after the commit, too late to undo anything: the statement itself fails."""
    org = fresh_org()
    ledger.post(org=org, type=T.GRANT, amount=1, key="b")
    first = CreditTransaction(organization_id=org.pk, type=T.GRANT, balance_after=0, idempotency_key="a")
    second = CreditTransaction(organization_id=org.pk, type=T.GRANT, balance_after=0, idempotency_key="b")
    outcome: list[object] = []

    with pytest.raises(IntegrityError, match="partly written"), transaction.atomic():
        queued = moves.apply_at_commit(
            org.pk,
            [(first, "%s", [Decimal(2)]), (second, "%s", [Decimal(3)])],
            strict=True,
            done=outcome.append,
        )
        assert queued

    assert outcome == []
    assert ledger.balance(org) == Decimal("11") == ledger.ledger_sum(org)
    assert not CreditTransaction.objects.filter(organization=org, idempotency_key="a").exists()


@pytest.mark.django_db(transaction=True)
def test_holds_sent_with_the_commit_from_fifty_threads_never_overdraw():
    """Ten credits, fifty runs holding one each at the same moment: ten commit, forty are refused."""
    org = fresh_org()
    start = threading.Barrier(50)

    def hold(n: int) -> str:
        start.wait()
        try:
            with transaction.atomic():
                ledger.reserve(org=org.pk, amount=1, key=f"run:{100 + n}:reserve", at_commit=True)
            return "held"
        except IntegrityError as exc:
            return "refused" if ledger.refusal(exc, org.pk, 1) else f"error {exc}"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(hold, range(50)))

    assert outcomes.count("held") == 10 and outcomes.count("refused") == 40
    assert ledger.balance(org) == Decimal("0") == ledger.ledger_sum(org)
