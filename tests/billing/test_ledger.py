"""The ledger's hard guarantees, on real PostgreSQL: any sequence of grants, reservations, settles,
releases and expiries keeps the balance at or above 0 and equal to the sum of entries (a hypothesis
state machine against a simple model); a key moves the balance once; racing debits never overdraw."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.services import organization_create
from billing import ledger, moves
from billing.models import BillingAccount, CreditTransaction
from billing.tasks import credits_expire
from tests.factories import UserFactory

T = CreditTransaction.Type
credits = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("60"), places=4)


def fresh_org(name="Ledger Co"):
    user = UserFactory()
    org = organization_create(name=name, owner=user)
    ledger.account_for(org)
    return org


# ----------------------------------------------------------- state machine


class LedgerMachine(RuleBasedStateMachine):
    """A model of what the balance must be, checked against the database after every step."""

    def __init__(self):
        super().__init__()
        self.org = fresh_org()
        self.expected = Decimal("10")  # the Free plan's sign-up grant
        self.keys = count()
        self.open: dict[str, Decimal] = {}  # reservation key -> amount held
        self.expiring: list[int] = [
            CreditTransaction.objects.get(organization=self.org, idempotency_key="signup").pk
        ]
        self.posted: list[tuple[str, str, Decimal]] = []  # (key, type, amount) to replay

    def key(self, kind: str) -> str:
        return f"{kind}:{next(self.keys)}"

    @rule(amount=credits, expires=st.booleans())
    def grant(self, amount, expires):
        key = self.key("grant")
        entry = ledger.post(
            org=self.org,
            type=T.GRANT,
            amount=amount,
            key=key,
            expires_at=timezone.now() + timedelta(days=30) if expires else None,
        )
        self.expected += amount
        self.posted.append((key, T.GRANT, amount))
        if expires:
            self.expiring.append(entry.pk)

    @rule(amount=credits)
    def reserve(self, amount):
        key = self.key("run")
        try:
            held = ledger.reserve(org=self.org, amount=amount, key=key)
        except ledger.InsufficientCredits as refused:
            assert amount > self.expected
            assert refused.available == self.expected
            return
        assert amount <= self.expected
        assert held is not None and held.amount == amount
        self.expected -= amount
        self.open[key] = amount

    @precondition(lambda self: self.open)
    @rule(data=st.data(), usage=st.decimals(min_value=0, max_value=Decimal("80"), places=4))
    def settle(self, data, usage):
        key = data.draw(st.sampled_from(sorted(self.open)))
        held = self.open.pop(key)
        charged = ledger.settle(org=self.org, reservation_key=key, usage=usage, usage_key=f"{key}:usage")
        # The reservation comes back, then the usage is charged, capped at what there is.
        assert charged == min(usage, self.expected + held)
        self.expected = self.expected + held - charged

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def release(self, data):
        key = data.draw(st.sampled_from(sorted(self.open)))
        ledger.release(org=self.org, reservation_key=key)
        self.expected += self.open.pop(key)

    @rule(amount=credits)
    def direct_debit(self, amount):
        key = self.key("usage")
        try:
            ledger.post(org=self.org, type=T.USAGE, amount=-amount, key=key)
        except ledger.InsufficientCredits:
            assert amount > self.expected
            return
        self.expected -= amount
        self.posted.append((key, T.USAGE, -amount))

    @precondition(lambda self: self.expiring)
    @rule(data=st.data())
    def expire(self, data):
        grant_id = data.draw(st.sampled_from(self.expiring))
        self.expiring.remove(grant_id)
        grant = CreditTransaction.objects.get(pk=grant_id)
        CreditTransaction.objects.filter(pk=grant_id).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert credits_expire(organization_id=self.org.pk) == 1
        self.expected -= min(grant.amount, self.expected)

    @precondition(lambda self: self.posted)
    @rule(data=st.data())
    def replay(self, data):
        key, type_, amount = data.draw(st.sampled_from(self.posted))
        ledger.post(org=self.org, type=type_, amount=amount, key=key)  # a retry: moves nothing

    @invariant()
    def balance_matches_the_entries_and_the_model(self):
        balance = BillingAccount.objects.get(organization=self.org).balance
        assert balance >= 0
        assert balance == ledger.ledger_sum(self.org) == self.expected
        last = CreditTransaction.objects.filter(organization=self.org).order_by("-id").first()
        assert last.balance_after == balance


@pytest.mark.django_db
def test_any_sequence_keeps_the_balance_non_negative_and_equal_to_the_entries():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# ------------------------------------------------------------- idempotency


@pytest.mark.django_db
def test_the_same_key_twice_moves_the_balance_once():
    org = fresh_org()

    first = ledger.post(org=org, type=T.PURCHASE, amount=100, key="cs_test_1")
    again = ledger.post(org=org, type=T.PURCHASE, amount=100, key="cs_test_1")

    assert first.pk == again.pk
    assert ledger.balance(org) == Decimal("110")
    assert CreditTransaction.objects.filter(organization=org, idempotency_key="cs_test_1").count() == 1


@pytest.mark.django_db
def test_a_settle_retried_charges_once():
    org = fresh_org()
    ledger.reserve(org=org, amount=4, key="run:1:reserve")

    for _ in range(3):
        ledger.settle(org=org, reservation_key="run:1:reserve", usage=3, usage_key="run:1:usage")

    assert ledger.balance(org) == Decimal("7")
    types = list(CreditTransaction.objects.filter(organization=org).values_list("type", flat=True))
    assert sorted(types) == sorted([T.GRANT, T.RESERVATION, T.RELEASE, T.USAGE])


@pytest.mark.django_db
def test_keys_are_per_organization():
    one, two = fresh_org("One"), fresh_org("Two")

    ledger.post(org=one, type=T.GRANT, amount=5, key="same")
    ledger.post(org=two, type=T.GRANT, amount=7, key="same")

    assert (ledger.balance(one), ledger.balance(two)) == (Decimal("15"), Decimal("17"))


# -------------------------------------------------------- never below zero


@pytest.mark.django_db
def test_a_debit_beyond_the_balance_is_refused_and_writes_nothing():
    org = fresh_org()

    with pytest.raises(ledger.InsufficientCredits) as refused:
        ledger.post(org=org, type=T.USAGE, amount=Decimal("-10.0001"), key="too-much")

    assert (refused.value.needed, refused.value.available) == (Decimal("10.0001"), Decimal("10"))
    assert ledger.balance(org) == Decimal("10")
    assert not CreditTransaction.objects.filter(organization=org, idempotency_key="too-much").exists()


@pytest.mark.django_db
def test_the_database_refuses_a_negative_balance_written_directly():
    org = fresh_org()

    with pytest.raises(IntegrityError, match="billing_balance_not_negative"), transaction.atomic():
        BillingAccount.objects.filter(organization=org).update(balance=Decimal("-0.0001"))

    assert ledger.balance(org) == Decimal("10")


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_debits_against_a_balance_for_ten_exactly_ten_succeed():
    org = fresh_org("Race Co")  # committed: 10 credits, so ten debits of 1 fit
    assert ledger.balance(org) == Decimal("10")
    share = ledger.balance(org) / 10
    start = threading.Barrier(50)

    def debit(i: int) -> bool:
        try:
            start.wait()
            if i % 2:
                ledger.reserve(org=org.pk, amount=share, key=f"run:{i}:reserve")
            else:
                ledger.post(org=org.pk, type=T.USAGE, amount=-share, key=f"usage:{i}")
            return True
        except ledger.InsufficientCredits:
            return False
        finally:
            connection.close()  # each thread had its own connection

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(debit, range(50)))

    assert results.count(True) == 10
    assert ledger.balance(org) == 0 == ledger.ledger_sum(org)
    debits = CreditTransaction.objects.filter(organization=org, amount__lt=0)
    assert debits.count() == 10
    assert min(debits.values_list("balance_after", flat=True)) == 0
    assert sorted(debits.values_list("balance_after", flat=True)) == [Decimal(n) for n in range(10)]
    assert ledger.reconcile() == []


# ---------------------------------------------------- one statement per move


def _statements(fn):
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        fn()
    return [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db
def test_a_reservation_and_a_settle_each_move_the_balance_in_one_statement():
    """Every run of an organization passes through its balance row: the move holds that row's lock
    for one statement, with no savepoint and no second round trip before the commit."""
    org = fresh_org()

    reserve = _statements(lambda: ledger.reserve(org=org, amount=4, key="run:9:reserve"))
    settle = _statements(
        lambda: ledger.settle(org=org, reservation_key="run:9:reserve", usage=3, usage_key="run:9:usage")
    )

    assert len(reserve) == 1 and reserve[0].startswith("WITH cur AS")
    assert len(settle) == 2  # the reservation's amount is read first, without a lock
    assert "FOR UPDATE" not in settle[0] and settle[1].startswith("WITH cur AS")
    assert not [sql for sql in reserve + settle if "SAVEPOINT" in sql]
    entries = CreditTransaction.objects.filter(organization=org).order_by("id")
    assert [(e.type, e.amount, e.balance_after) for e in entries] == [
        (T.GRANT, Decimal("10"), Decimal("10")),
        (T.RESERVATION, Decimal("-4"), Decimal("6")),
        (T.RELEASE, Decimal("4"), Decimal("10")),
        (T.USAGE, Decimal("-3"), Decimal("7")),
    ]
    assert ledger.balance(org) == Decimal("7") == ledger.ledger_sum(org)


@pytest.mark.django_db
def test_a_posted_entry_comes_back_saved():
    org = fresh_org()
    entry = ledger.post(org=org, type=T.USAGE, amount=-2, key="u:1", model="gpt-x", input_tokens=5)
    stored = CreditTransaction.objects.get(pk=entry.pk)
    assert (entry.amount, entry.balance_after, entry._state.adding) == (Decimal("-2"), Decimal("8"), False)
    assert (stored.amount, stored.balance_after, stored.model, stored.input_tokens) == (
        Decimal("-2"),
        Decimal("8"),
        "gpt-x",
        5,
    )


@pytest.mark.django_db
def test_a_settle_whose_release_was_written_already_moves_nothing_and_charges_once():
    """A release written earlier (a cancel) meets a settle: it goes entry by entry, each idempotent."""
    org = fresh_org()
    ledger.reserve(org=org, amount=4, key="run:5:reserve")
    ledger.post(org=org, type=T.RELEASE, amount=4, key="run:5:reserve:release")

    charged = ledger.settle(org=org, reservation_key="run:5:reserve", usage=3, usage_key="run:5:usage")

    assert charged == 3
    assert ledger.balance(org) == Decimal("7") == ledger.ledger_sum(org)
    assert CreditTransaction.objects.filter(organization=org, type=T.RELEASE).count() == 1


@pytest.mark.django_db
def test_entries_partly_written_already_raise_and_move_nothing():
    org = fresh_org()
    ledger.post(org=org, type=T.GRANT, amount=1, key="b")
    first = CreditTransaction(organization_id=org.pk, type=T.GRANT, balance_after=0, idempotency_key="a")
    second = CreditTransaction(organization_id=org.pk, type=T.GRANT, balance_after=0, idempotency_key="b")

    with pytest.raises(IntegrityError, match="partly written"), transaction.atomic():
        moves.apply(org.pk, [(first, "%s", [Decimal(2)]), (second, "%s", [Decimal(3)])])

    assert ledger.balance(org) == Decimal("11") == ledger.ledger_sum(org)
    assert not CreditTransaction.objects.filter(organization=org, idempotency_key="a").exists()
