"""config.prepared: a hot read compiled once gives exactly what the ORM gives."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiKey, Role
from accounts.services import _keys_by_prefix, api_key_create
from config.prepared import Prepared
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _keys(org_id, prefix):
    # The API-key lookup the product prepares (related objects, an annotation), with a second parameter.
    return _keys_by_prefix(prefix).filter(organization_id=org_id)


KEYS = Prepared(_keys, int, str)


@pytest.fixture
def keys():
    a = MembershipFactory(role=Role.ADMIN)
    b = MembershipFactory(role=Role.OWNER)
    key_a, _ = api_key_create(org=a.organization, name="a", by=a.user, role=Role.ADMIN)
    key_b, _ = api_key_create(org=b.organization, name="b", by=b.user, role=Role.MEMBER)
    return key_a, key_b


def test_first_matches_the_orm_with_related_objects_and_annotations(keys):
    key_a, key_b = keys
    for key in (key_a, key_b):
        expected = _keys(key.organization_id, key.prefix).first()
        got = KEYS.first(key.organization_id, key.prefix)
        assert got is not None and got.pk == expected.pk
        fields = [f.attname for f in ApiKey._meta.concrete_fields]
        assert [getattr(got, f) for f in fields] == [getattr(expected, f) for f in fields]
        assert got.creator_role == expected.creator_role
        with CaptureQueriesContext(connection) as queries:
            assert got.organization.name == expected.organization.name  # loaded with the key
            assert got.created_by.email == expected.created_by.email
        assert len(queries) == 0
        assert got._state.adding is False and got._state.db == "default"


def test_values_are_bound_per_call_and_tenancy_holds(keys):
    key_a, key_b = keys
    assert KEYS.first(key_b.organization_id, key_a.prefix) is None  # another org's key
    assert KEYS.first(key_a.organization_id, "nope") is None
    assert [k.pk for k in KEYS.all(key_b.organization_id, key_b.prefix)] == [key_b.pk]


def test_sql_is_generated_once_per_process(keys):
    key_a, key_b = keys
    prepared = Prepared(_keys, int, str)
    for key in (key_a, key_b, key_a):
        assert prepared.first(key.organization_id, key.prefix).pk == key.pk
    assert prepared.compiles == 1
    prepared.all(key_a.organization_id, key_a.prefix)
    assert prepared.compiles == 2  # "all" has no LIMIT: its own SQL


@pytest.mark.django_db(transaction=True)
def test_other_threads_connections_use_the_sql_compiled_once(keys):
    """Under ASGI every request has a connection wrapper of its own: they share the compiled SQL
    (it was compiled, and kept, per wrapper, so daphne compiled on every request and kept them all)."""
    import threading

    key_a, key_b = keys
    prepared = Prepared(_keys, int, str)
    assert prepared.first(key_a.organization_id, key_a.prefix).pk == key_a.pk
    found = {}

    from django.db import connections

    main_wrapper = connections["default"]

    def in_a_thread():
        try:
            found["pk"] = prepared.first(key_b.organization_id, key_b.prefix).pk
            found["own_wrapper"] = connections["default"] is not main_wrapper
        finally:
            connections["default"].close()

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert found == {"pk": key_b.pk, "own_wrapper": True}
    assert prepared.compiles == 1


def test_wrong_values_are_refused(keys):
    with pytest.raises(TypeError, match="expected 2 values"):
        KEYS.first(1)
    with pytest.raises(TypeError, match="expected str"):
        KEYS.first(1, 2)


def test_a_builder_whose_parameter_is_not_bound_once_is_refused():
    twice = Prepared(lambda org: ApiKey.objects.filter(organization_id=org, created_by_id=org), int)
    with pytest.raises(ImproperlyConfigured, match="comes out 2 times"):
        twice.first(1)
    unused = Prepared(lambda org: ApiKey.objects.all(), int)
    with pytest.raises(ImproperlyConfigured, match="comes out 0 times"):
        unused.first(1)
    with pytest.raises(ImproperlyConfigured, match="ints or strings"):
        Prepared(lambda d: ApiKey.objects.all(), float)


def test_converters_and_the_row_reader_are_worked_out_once(keys, monkeypatch):
    """Each column's converters (a JSON column is text until its converter parses it) and the reader
    of related objects are found on the first call and reused: Django works them out per evaluation."""
    from billing.ledger import account_for
    from billing.models import BillingAccount

    key_a, key_b = keys
    accounts = Prepared(
        lambda org_id: BillingAccount.objects.filter(organization_id=org_id).select_related("plan"), int
    )
    limits = Prepared(
        lambda org_id: BillingAccount.objects.filter(organization_id=org_id).values_list("plan__limits"), int
    )
    compiler_type = type(accounts._compiled("first", (key_a.organization_id,)).compiler)
    found = []
    original = compiler_type.get_converters
    monkeypatch.setattr(
        compiler_type, "get_converters", lambda self, fields: found.append(1) or original(self, fields)
    )
    for key in (key_a, key_b, key_a):
        expected = account_for(key.organization_id)
        got = accounts.first(key.organization_id)
        assert got.pk == expected.pk and got.balance == expected.balance
        assert isinstance(got.plan.limits, dict) and got.plan.limits == expected.plan.limits
        assert limits.rows(key.organization_id) == [(expected.plan.limits,)]
    assert len(found) == 2  # once per compiled query, not once per call
