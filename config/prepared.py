"""Hot reads compiled to SQL once.

Django compiles a queryset to SQL each time it is evaluated. For the few lookups made on every API
request and every run (the API key, the agent, the billing account, the run itself) the compiling
costs more than the query. `Prepared` compiles its queryset once per process, with probe
values in place of the parameters, and remembers where the probes sit among the SQL parameters; a
call then only binds the real values and turns the rows into model instances the way Django's own
`ModelIterable` does, `select_related` and annotations included.

    _AGENT = Prepared(lambda org_id, pk: Agent.objects.filter(organization_id=org_id, pk=pk), int, int)
    agent = _AGENT.first(org.pk, 7)

Parameters are ints or strings that the queryset uses as they are (equality filters, `in` lists are
not supported). A builder whose probes do not come out as parameters exactly once is refused when it
is first compiled, so a mistake shows in the first test that uses it.

The writes a hot path makes on every step have the same cost, so the module has their light forms too:
`update` (an UPDATE of some columns by equality conditions, `QuerySet.update` without the compiler)
and `insert` (`bulk_create` of new rows, primary keys set). Their SQL is built once per shape; values
go through each field's `get_db_prep_save`, as the ORM's own writes do. `Prepared.first_updated` is a
claim and the load after it in one statement; `next_ids` and `next_id` take keys ahead of an insert.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model, QuerySet
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=Model)

# Values no real lookup uses: each probe must come out of the compiler as exactly one parameter.
_INT_PROBE = -7_340_000_000_001
_STR_PROBE = "\x1fprobe-{}\x1f"


@dataclass
class _Compiled:
    sql: str
    params: list[Any]
    slots: list[tuple[int, int]]  # (position in params, index of the caller's value)
    compiler: Any
    # What Django works out again on every evaluation (each column's converters; for model rows, the
    # columns that make the object and the populators of its related objects): worked out once.
    _converters: dict[int, Any] | None = dataclasses.field(default=None, repr=False)
    _reader: tuple[Any, ...] | None = dataclasses.field(default=None, repr=False)

    def converted(self, rows: list[Any]) -> Any:
        """`compiler.results_iter(results=[rows])` with the converters found on the first call."""
        compiler = self.compiler
        converters = self._converters
        if converters is None:
            fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
            if compiler.has_composite_fields(fields):
                return compiler.results_iter(results=[rows])  # rare: Django's own path, uncached
            converters = self._converters = compiler.get_converters(fields)
        return compiler.apply_converters(rows, converters) if converters else rows

    def reader(self, using: str) -> tuple[Any, ...]:
        """(model, start, end, init_list, populators, annotations) for turning a row into objects."""
        reader = self._reader
        if reader is None:
            compiler = self.compiler
            select, klass_info = compiler.select, compiler.klass_info
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            reader = self._reader = (
                klass_info["model"],
                start,
                end,
                [f[0].target.attname for f in select[start:end]],
                get_related_populators(klass_info, select, using),  # type: ignore[call-arg]  # Django 5.2
                list((compiler.annotation_col_map or {}).items()),
            )
        return reader

    def rows(
        self, values: tuple[Any, ...], using: str, prefix: str = "", before: list[Any] | None = None
    ) -> list[Any]:
        params = list(self.params)
        for position, index in self.slots:
            params[position] = values[index]
        with cursor_for(connections[using]) as cursor:
            cursor.execute(prefix + self.sql, [*(before or []), *params])
            return cursor.fetchall()


def cursor_for(connection: Any, prepare: bool = True) -> Any:
    """A cursor for a statement of fixed SQL: prepared on the server where the backend can
    (`config.postgres`), else Django's own."""
    prepared_cursor = getattr(connection, "prepared_cursor", None) if prepare else None
    return prepared_cursor() if prepared_cursor is not None else connection.cursor()


class Prepared(Generic[M]):
    def __init__(self, build: Callable[..., QuerySet[M]], *kinds: type, using: str = DEFAULT_DB_ALIAS):
        if any(kind not in (int, str) for kind in kinds):
            raise ImproperlyConfigured("Prepared parameters are ints or strings.")
        self.build, self.kinds, self.using = build, kinds, using
        self.compiles = 0  # how many times SQL was generated: once per shape
        self._lock = threading.Lock()
        # Per process, not per connection: under ASGI every request gets a connection wrapper of
        # its own, and the SQL is the same for all of them (one alias, one backend). The compiler
        # kept here is only asked for its columns and converters, never to run a query.
        self._cache: dict[str, _Compiled] = {}

    def first(self, *values: Any) -> M | None:
        objects = self._run("first", values)
        return objects[0] if objects else None

    def all(self, *values: Any) -> list[M]:
        return self._run("all", values)

    def first_updated(self, where: dict[str, Any], changes: dict[str, Any], *values: Any) -> M | None:
        """`update(model, where, changes)` and `first(*values)` in one statement, for a claim and the
        load that follows it: the queryset reads the model's table as the rows the UPDATE returns (a
        data-modifying WITH under the table's name). So the object shows the new values, and there
        is none unless the UPDATE matched a row the queryset selects. The queryset must not read the
        model's table anywhere but in its main FROM (a subquery there would see only those rows),
        nor group its rows (an aggregate): PostgreSQL groups by a table's key, which these rows lack."""
        compiled = self._compiled("first", values)
        query = compiled.compiler.query
        if query.group_by is not None:
            raise ImproperlyConfigured(
                "first_updated() cannot take a queryset that groups rows (an aggregate)."
            )
        model = query.model
        sql, before = _update_statement(model, where, changes, {}, self.using)
        table = connections[self.using].ops.quote_name(model._meta.db_table)
        rows = compiled.rows(
            values, self.using, prefix=f"WITH {table} AS ({sql} RETURNING *) ", before=before
        )
        objects = self._objects(compiled, rows)
        return objects[0] if objects else None

    def rows(self, *values: Any) -> list[tuple[Any, ...]]:
        """The rows of a `values_list()` queryset, as tuples, its fields' converters applied."""
        compiled = self._compiled("rows", values)
        return [tuple(row) for row in compiled.converted(compiled.rows(values, self.using))]

    # ------------------------------------------------------------------ internals

    def _run(self, shape: str, values: tuple[Any, ...]) -> list[M]:
        compiled = self._compiled(shape, values)
        return self._objects(compiled, compiled.rows(values, self.using))

    def _compiled(self, shape: str, values: tuple[Any, ...]) -> _Compiled:
        if len(values) != len(self.kinds):
            raise TypeError(f"expected {len(self.kinds)} values, got {len(values)}")
        for value, kind in zip(values, self.kinds, strict=True):
            if type(value) is not kind:
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        compiled = self._cache.get(shape)
        if compiled is None:
            with self._lock:
                compiled = self._cache.get(shape)
                if compiled is None:
                    compiled = self._cache[shape] = self._compile(shape)
        return compiled

    def _compile(self, shape: str) -> _Compiled:
        probes = [
            _INT_PROBE - n if kind is int else _STR_PROBE.format(n) for n, kind in enumerate(self.kinds)
        ]
        queryset = self.build(*probes)
        if queryset._prefetch_related_lookups or queryset._known_related_objects:  # type: ignore[attr-defined]
            raise ImproperlyConfigured("Prepared querysets cannot prefetch or carry known related objects.")
        if shape == "first":
            queryset = (queryset if queryset.ordered else queryset.order_by("pk"))[:1]
        compiler = queryset.query.get_compiler(using=self.using)
        sql, params = compiler.as_sql()
        params = list(params)
        slots = []
        for n, probe in enumerate(probes):
            found = [i for i, p in enumerate(params) if type(p) is type(probe) and p == probe]
            if len(found) != 1:
                raise ImproperlyConfigured(
                    f"parameter {n} of a prepared query comes out {len(found)} times in its SQL, not once"
                )
            slots.append((found[0], n))
        self.compiles += 1
        return _Compiled(sql=sql, params=params, slots=slots, compiler=compiler)

    def _objects(self, compiled: _Compiled, rows: list[Any]) -> list[M]:
        """What ModelIterable does with the rows of a compiled query."""
        model, start, end, init_list, populators, annotations = compiled.reader(self.using)
        objects = []
        for row in compiled.converted(rows):
            obj = model.from_db(self.using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in annotations:
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects


# ---------------------------------------------------------------------- writes

_writes: dict[tuple[Any, ...], tuple[str, list[Field[Any, Any]]]] = {}
_writes_lock = threading.Lock()


_MAX_CACHED_ROWS = 64  # an insert of more rows (a long stream's events) builds its SQL each time
_MAX_PREPARED_ROWS = 8  # and one of more than this is not prepared on the server: a shape per count


def _statement(
    key: tuple[Any, ...], build: Callable[[], tuple[str, list[Field[Any, Any]]]], cache: bool = True
) -> tuple[str, list[Field[Any, Any]]]:
    statement = _writes.get(key)
    if statement is None:
        if not cache:
            return build()
        with _writes_lock:
            statement = _writes.setdefault(key, build())
    return statement


def _column(model: type[Model], name: str, using: str) -> tuple[Field[Any, Any], str]:
    """A concrete field of the model by name or attname, and its quoted column."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.concrete or not field.column:
        raise ImproperlyConfigured(f"{model.__name__}.{name} is not a column")
    return field, connections[using].ops.quote_name(field.column)


@overload
def update(
    model: type[Model],
    where: dict[str, Any],
    values: dict[str, Any],
    add: dict[str, Any] | None = None,
    using: str = DEFAULT_DB_ALIAS,
    at_commit: Literal[False] = False,
) -> int: ...


@overload
def update(
    model: type[Model],
    where: dict[str, Any],
    values: dict[str, Any],
    add: dict[str, Any] | None = None,
    using: str = DEFAULT_DB_ALIAS,
    at_commit: bool = False,
) -> int | None: ...


def update(
    model: type[Model],
    where: dict[str, Any],
    values: dict[str, Any],
    add: dict[str, Any] | None = None,
    using: str = DEFAULT_DB_ALIAS,
    at_commit: bool = False,
) -> int | None:
    """`model.objects.filter(**where).update(**values, **{f: F(f) + n for f, n in add.items()})`.

    `where` holds equality conditions on column attnames (`run_id`, not `run`); a key ending in
    `__in` takes a list or tuple. Returns the number of rows updated, like `QuerySet.update`.
    `at_commit`: sent with the transaction's COMMIT where the block can carry it (`config.postgres`),
    saving a round trip; it then returns None (its errors fail the commit)."""
    sql, params = _update_statement(model, where, values, add or {}, using)
    connection = connections[using]
    if at_commit and send_with_commit(connection, sql, params, lambda rows: None, prepare=True):
        return None
    with cursor_for(connection) as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _update_statement(
    model: type[Model], where: dict[str, Any], values: dict[str, Any], add: dict[str, Any], using: str
) -> tuple[str, list[Any]]:
    """`update()`'s SQL (built once per shape) and its parameters."""
    if not where or not (values or add):
        raise ValueError("update() needs conditions and something to set")
    key = ("update", model, tuple(values), tuple(add), tuple(where), using)

    def build() -> tuple[str, list[Field[Any, Any]]]:
        fields: list[Field[Any, Any]] = []
        sets, conditions = [], []
        for name in values:
            field, column = _column(model, name, using)
            sets.append(f"{column} = %s")
            fields.append(field)
        for name in add:
            field, column = _column(model, name, using)
            sets.append(f"{column} = {column} + %s")
            fields.append(field)
        for name in where:
            attname, _, lookup = name.partition("__")
            if lookup not in ("", "in"):
                raise ImproperlyConfigured(f"update() conditions are equalities or __in, not {name!r}")
            field, column = _column(model, attname, using)
            conditions.append(f"{column} {'= ANY(%s)' if lookup else '= %s'}")
            fields.append(field)
        quote = connections[using].ops.quote_name
        sql = f"UPDATE {quote(model._meta.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(conditions)}"  # noqa: S608  # nosec B608 - the model's own table and columns
        return sql, fields

    sql, fields = _statement(key, build)
    connection = connections[using]
    set_values = [*values.values(), *add.values()]
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields[: len(set_values)], set_values, strict=True)
    ]
    for field, (name, value) in zip(fields[len(set_values) :], where.items(), strict=True):
        if name.endswith("__in"):
            params.append([field.get_db_prep_value(v, connection, prepared=False) for v in value])
        else:
            params.append(field.get_db_prep_save(value, connection))
    return sql, params


def send_with_commit(
    connection: Any, sql: str, params: list[Any], done: Callable[[Any], None], prepare: bool = False
) -> bool:
    """Queue `sql` to go out with the transaction's COMMIT (`config.postgres`); False, and nothing
    queued, where no commit can carry it (another backend, a savepoint, autocommit). `prepare`: fixed
    SQL, prepared on the server."""
    send = getattr(connection, "send_with_commit", None)  # config.postgres; not other backends
    return bool(send is not None and send(sql, params, done, prepare=prepare))


def insert_fields(model: type[Model]) -> list[Field[Any, Any]]:
    """The columns an INSERT of a new row writes, as `bulk_create` picks them: not the database's
    primary key, not generated columns."""
    return [f for f in model._meta.local_concrete_fields if not f.primary_key and not f.generated]


def next_ids(*models: type[Model], using: str = DEFAULT_DB_ALIAS) -> list[int]:
    """A primary key for a new row of each model given (a model given twice gets two), taken from
    the models' sequences in one round trip. For rows that refer to one another and are sent with the
    commit (`insert(..., at_commit=True)`): their keys are known before anything is written."""
    key = ("next_ids", models, using)

    def build() -> tuple[str, list[Field[Any, Any]]]:
        return "SELECT " + ", ".join(["nextval(%s::regclass)"] * len(models)), []

    sql, _ = _statement(key, build)
    connection = connections[using]
    with cursor_for(connection) as cursor:
        cursor.execute(sql, [_sequence(model, using) for model in models])
        return [int(n) for n in cursor.fetchone()]


def next_id(model: type[Model], using: str = DEFAULT_DB_ALIAS) -> Any:
    """`next_ids` as an expression, for a query that takes a key for a row it will be followed by
    (a run's load takes its answer's key): no round trip of its own."""
    from django.db.models import BigIntegerField
    from django.db.models.expressions import RawSQL

    return RawSQL("nextval(%s::regclass)", [_sequence(model, using)], output_field=BigIntegerField())


_sequences: dict[tuple[type[Model], str], str] = {}


def _sequence(model: type[Model], using: str) -> str:
    """The sequence behind the model's primary key (serial or identity), looked up once."""
    name = _sequences.get((model, using))
    if name is None:
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_serial_sequence(%s, %s)", [model._meta.db_table, model._meta.pk.column]
            )
            (name,) = cursor.fetchone()
        if name is None:
            raise ImproperlyConfigured(f"{model.__name__}'s primary key has no sequence")
        _sequences[(model, using)] = name
    return name


def insert(objs: list[M], using: str = DEFAULT_DB_ALIAS, at_commit: bool = False) -> list[M]:
    """`bulk_create` of new rows of one model: one INSERT, the objects counting as saved afterwards.
    The rows' primary keys are either all unset (the database assigns them, and they are set on the
    objects) or all taken with `next_ids`. `at_commit`: sent with the transaction's COMMIT where the
    block can carry it, the keys set (if the database assigns them) once it has committed."""
    if not objs:
        return objs
    model = type(objs[0])
    keyed = objs[0].pk is not None
    if any(type(obj) is not model or not obj._state.adding or (obj.pk is not None) != keyed for obj in objs):
        raise ValueError("insert() takes new rows of one model, with keys from next_ids or none")
    if model._meta.parents:
        raise ImproperlyConfigured("insert() writes one table; use bulk_create for multi-table inheritance")
    key = ("insert", model, len(objs), keyed, using)

    def build() -> tuple[str, list[Field[Any, Any]]]:
        meta, quote = model._meta, connections[using].ops.quote_name
        fields = [meta.pk, *insert_fields(model)] if keyed else insert_fields(model)
        columns = ", ".join(quote(str(f.column)) for f in fields)
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row] * len(objs))} "  # noqa: S608  # nosec B608 - the model's own table and columns
            f"RETURNING {quote(str(meta.pk.column))}"
        )
        return sql, fields

    sql, fields = _statement(key, build, cache=len(objs) <= _MAX_CACHED_ROWS)
    connection = connections[using]
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs for f in fields]

    def saved(rows: list[tuple[Any, ...]]) -> None:
        for obj, (pk,) in zip(objs, rows, strict=True):
            obj.pk = pk
            obj._state.adding, obj._state.db = False, using

    prepare = len(objs) <= _MAX_PREPARED_ROWS
    if at_commit and send_with_commit(connection, sql, params, saved, prepare=prepare):
        return objs
    with cursor_for(connection, prepare) as cursor:
        cursor.execute(sql, params)
        saved(cursor.fetchall())
    return objs
