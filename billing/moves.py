"""One-statement balance moves: the SQL behind every ledger write (billing/ledger.py).

A move locks the organization's balance row, computes each entry's amount from the balance (an SQL
expression over `cur.balance`), inserts the entries and moves the balance only if they all went in
(none had a used key) and it stays >= 0: one statement, so no savepoint and no round trip while the
row every run of the organization passes through is locked. `apply()` runs it at once;
`apply_at_commit()` sends it with the COMMIT of the outermost transaction (config/postgres), so the
lock lives only inside the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction

from billing.models import ZERO, CreditTransaction
from config.prepared import cursor_for, insert_fields, send_with_commit

Q4 = Decimal("0.0001")
T = CreditTransaction.Type
NOT_NEGATIVE = "billing_balance_not_negative"  # the balance's check constraint (billing.models)


def q(value: Any) -> Decimal:
    return Decimal(value).quantize(Q4, rounding=ROUND_HALF_UP)


def this_month() -> str:
    """The month budget alerts are keyed by (billing.caps marks `budget_alerted_month` with it)."""
    from billing.limits import month_start  # limits imports the ledger, which imports this module

    return month_start().strftime("%Y-%m")


@dataclass
class Moved:
    before: Decimal  # the balance before the move
    amounts: list[Decimal]  # what each entry moved
    applied: bool  # False: it did not fit, or an entry with its key exists (nothing moved)
    alert_due: bool  # a low-balance or budget alert may be due (the alert task decides for real)


Part = tuple[CreditTransaction, str, list[Any]]  # an entry, its amount's SQL expression, its values


def apply(org_id: int, parts: list[Part]) -> Moved | None:
    """Write entries and move the balance by their sum, now (the statement is the module's). None: the
    organization has no account."""
    if not connection.in_atomic_block:
        with transaction.atomic():  # so that the check below can undo a partial write
            return apply(org_id, parts)
    sql, params = _statement(org_id, parts, strict=False)
    with cursor_for(connection) as cursor:
        cursor.execute(sql, params)
        return _moved(org_id, parts, cursor.fetchall())


def apply_at_commit(
    org_id: int, parts: list[Part], *, strict: bool, done: Callable[[Moved | None], None]
) -> bool:
    """`apply`, sent with the COMMIT of the outermost transaction (config/postgres): the balance row
    is then locked only inside the server, never while this thread waits to read a result. `done`
    gets the outcome after the commit. `strict`: a move that would take the balance below zero fails
    the commit (the balance check) instead of being skipped, so the whole transaction is undone.
    False, and nothing queued, where there is no such commit (inside a savepoint, in a test case's
    transaction): the caller applies it at once."""
    sql, params = _statement(org_id, parts, strict=strict)
    return send_with_commit(
        connection, sql, params, lambda rows: done(_moved(org_id, parts, rows)), prepare=True
    )


# SQL of each shape of move (the entries' amount expressions, strict or not), built once.
_STATEMENTS: dict[tuple[tuple[str, ...], bool], str] = {}


@cache
def _entry_fields() -> list[tuple[Any, str | None]]:
    """The columns an entry writes, with their SQL types (for the casts), read once."""
    fields = insert_fields(CreditTransaction)
    return [(f, f.cast_db_type(connection)) for f in fields]


def _statement(org_id: int, parts: list[Part], *, strict: bool) -> tuple[str, list[Any]]:
    shape = (tuple(expression for _, expression, _ in parts), strict)
    fields = _entry_fields()
    sql = _STATEMENTS.get(shape)
    if sql is None:
        sql = _STATEMENTS[shape] = _build(shape[0], fields, strict)
    params: list[Any] = [org_id]
    for _, _, values in parts:
        params.extend(values)
    for entry, _, _ in parts:
        params.extend(
            f.get_db_prep_save(f.pre_save(entry, True), connection)
            for f, _ in fields
            if f.attname not in ("amount", "balance_after")
        )
    params += [org_id, len(parts), this_month()]
    if strict:
        params.append(len(parts))
    return sql, params


def _build(expressions: tuple[str, ...], fields: list[tuple[Any, str | None]], strict: bool) -> str:
    amounts = [f"({expression})::numeric AS a{n}" for n, expression in enumerate(expressions)]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f, _ in fields)
    selects: list[str] = []
    running = "v.before"
    for n in range(len(expressions)):
        running = f"{running} + v.a{n}"
        values = []
        for f, cast in fields:
            if f.attname == "amount":
                values.append(f"v.a{n}")
            elif f.attname == "balance_after":
                values.append(f"({running})")
            else:
                values.append(f"CAST(%s AS {cast})")  # typed: the SELECTs are a UNION
        # Strict: the entry goes in whatever the balance, and the balance check refuses the move.
        where = "" if strict else f" WHERE {running} >= 0"
        selects.append(f"SELECT {', '.join(values)} FROM v{where}")  # noqa: S608  # nosec B608
    total = " + ".join(f"v.a{n}" for n in range(len(expressions)))
    return (
        "WITH cur AS (SELECT balance FROM billing_billingaccount WHERE organization_id = %s FOR UPDATE), "  # noqa: S608  # nosec B608 - built from the model's own columns
        f"v AS (SELECT cur.balance AS before, {', '.join(amounts)} FROM cur), "
        f"ins AS (INSERT INTO billing_credittransaction ({columns}) {' UNION ALL '.join(selects)} "
        "ON CONFLICT (organization_id, idempotency_key) DO NOTHING RETURNING id, idempotency_key), "
        f"moved AS (UPDATE billing_billingaccount a SET balance = v.before + {total}, updated_at = now() "
        "FROM v WHERE a.organization_id = %s AND (SELECT count(*) FROM ins) = %s "
        "RETURNING a.balance, " + _ALERT_MAY_BE_DUE + ") "  # noqa: S608  # nosec B608
        f"SELECT v.before, {', '.join(f'v.a{n}' for n in range(len(expressions)))}, moved.balance IS NOT NULL, "
        "COALESCE(moved.alert, false), (SELECT json_object_agg(idempotency_key, id) FROM ins) "
        "FROM v LEFT JOIN moved ON true"
        # Strict: its result is read after the commit, too late to undo a partial write, so the
        # statement fails instead (billing_refuse, migration 0004) and the transaction with it.
        + (
            " WHERE CASE WHEN (SELECT count(*) FROM ins) IN (0, %s) THEN true ELSE billing_refuse("
            "'ledger entries were partly written already; nothing moved') END"
            if strict
            else ""
        )
    )


def _moved(org_id: int, parts: list[Part], rows: list[tuple[Any, ...]]) -> Moved | None:
    """Read a move's row (none: no account) and mark its entries saved."""
    if not rows:
        return None
    row = rows[0]
    before, moved_amounts = q(row[0]), [q(a) for a in row[1:-3]]
    applied, alert_due, ids = row[-3], row[-2], row[-1]
    if isinstance(ids, str):  # json arrives parsed unless a text loader is registered for it
        ids = json.loads(ids)
    if applied:
        running_balance = before
        for (entry, _, _), amount in zip(parts, moved_amounts, strict=True):
            running_balance += amount
            entry.amount, entry.balance_after = amount, running_balance
            entry.pk = ids[entry.idempotency_key]
            entry._state.adding, entry._state.db = False, connection.alias
    elif ids:
        # Some entries went in and others met a used key: only a settle racing a replay of the same
        # run does that. Nothing moved; the caller's transaction is undone with these rows.
        raise IntegrityError(f"ledger entries of org {org_id} were partly written already; nothing moved")
    return Moved(before=before, amounts=moved_amounts, applied=bool(applied), alert_due=bool(alert_due))


# Whether a low-balance or budget alert may be due, read off the account row `a` an UPDATE has just
# written, so the alert task is queued only then, not after every debit (the task decides for real).
_ALERT_MAY_BE_DUE = (
    "((a.balance < a.low_balance_threshold AND NOT a.low_balance_notified) "
    "OR (a.monthly_budget IS NOT NULL AND a.budget_alerted_month <> %s)) AS alert"
)


def entry(org_id: int, type: str, key: str, description: str, refs: dict[str, Any]) -> CreditTransaction:
    """A new entry; its amount and the balance after it come from the move."""
    return CreditTransaction(
        organization_id=org_id,
        type=type,
        balance_after=ZERO,
        idempotency_key=key,
        description=description[:300],
        **refs,
    )


def settle_parts(
    org_id: int,
    reservation_key: str,
    released: Decimal,
    usage: Decimal,
    usage_key: str,
    description: str,
    refs: dict[str, Any],
) -> list[Part]:
    """The release and the usage of a settle, to move in one statement (a run's final transaction
    stays short)."""
    parts: list[Part] = []
    if released > 0:
        release = entry(org_id, T.RELEASE, f"{reservation_key}:release", f"Release: {description}", refs)
        parts.append((release, "%s", [released]))
    if usage > 0:
        charge = entry(org_id, T.USAGE, usage_key, description, refs)
        # The usage takes what there is, after the release.
        parts.append((charge, "-LEAST(%s, cur.balance + %s)", [usage, max(released, ZERO)]))
    return parts
