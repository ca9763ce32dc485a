"""Hand-written reads for the few queries on every request's hot path.

Building a query through the ORM costs about a millisecond of CPU on this project's
machines, more than PostgreSQL takes to answer an indexed lookup. The reads that every API
request makes (the API key, the idempotency key, the payment by id) therefore use SQL
written once per model here, with Django's own converters turning columns into field
values, so the instances they return are exactly what the ORM would have built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import cached_property
from typing import Any, Generic, TypeVar

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Model
from django.utils import timezone

M = TypeVar("M", bound=Model)


class ModelColumns(Generic[M]):
    """The concrete columns of ``model``, selected under a table alias."""

    def __init__(self, model: type[M], alias: str) -> None:
        self.model = model
        self.alias = alias
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self._converters: dict[str, list[tuple[Any, list[Callable[..., Any]]]]] = {}

    def __len__(self) -> int:
        return len(self.fields)

    @cached_property
    def select(self) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{self.alias}.{quote(field.column)}" for field in self.fields)

    @cached_property
    def table(self) -> str:
        return f"{connection.ops.quote_name(self.model._meta.db_table)} {self.alias}"

    def param(self, name: str, value: Any) -> Any:
        """``value`` as the database stores field ``name`` (UUIDs are text on SQLite)."""
        return self.model._meta.get_field(name).get_db_prep_value(value, connection)

    def _converters_for_connection(self) -> list[tuple[Any, list[Callable[..., Any]]]]:
        converters = self._converters.get(connection.vendor)
        if converters is None:
            converters = []
            for field in self.fields:
                column = field.get_col(self.alias)
                converters.append(
                    (
                        column,
                        connection.ops.get_db_converters(column)
                        + field.get_db_converters(connection),
                    )
                )
            self._converters[connection.vendor] = converters
        return converters

    def build(self, values: Sequence[Any]) -> M:
        """An instance from this model's slice of a result row, as the ORM would build it."""
        converted = []
        for value, (column, converters) in zip(
            values, self._converters_for_connection(), strict=True
        ):
            for converter in converters:
                value = converter(value, column, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.attnames, converted)


def fetch_rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# The channel on which a transaction tells the dispatcher (``run_worker``) that work is due.
DISPATCH_CHANNEL = "momo_dispatch"


def dispatcher_wake() -> None:
    """Wake the dispatchers (PostgreSQL ``NOTIFY``, delivered when the transaction commits,
    or at once in autocommit). Elsewhere nothing: the dispatcher polls (SQLite)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [DISPATCH_CHANNEL])


def insert_together(rows: Sequence[Model], *, wake_dispatcher: bool = False) -> None:
    """Insert new model instances atomically, on PostgreSQL in one statement (one round trip).

    Each row becomes a data-modifying CTE of a single statement, which PostgreSQL runs and
    commits as one unit: a constraint violation in any of them inserts none. With
    ``wake_dispatcher`` the same statement notifies the dispatcher (``dispatcher_wake``).
    Auto-increment primary keys come back and are set on the instances. Elsewhere (SQLite)
    the rows are saved one by one in a transaction. Fields are prepared exactly as
    ``Model.save`` does (``pre_save`` for auto_now_add, then ``get_db_prep_save``); signals are
    not sent and
    custom ``save`` methods are not called, so use it only for models that need neither.
    """
    if connection.vendor != "postgresql":
        with transaction.atomic():
            for row in rows:
                row.save(force_insert=True)
        return
    quote = connection.ops.quote_name
    ctes: list[str] = []
    params: list[Any] = []
    returning: list[tuple[int, Model]] = []
    for index, row in enumerate(rows):
        meta = row._meta
        pk_from_database = row.pk is None
        fields = [
            field for field in meta.concrete_fields if not (field.primary_key and pk_from_database)
        ]
        params.extend(
            field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields
        )
        columns = ", ".join(quote(field.column) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        clause = f"RETURNING {quote(meta.pk.column)}" if pk_from_database else ""
        ctes.append(
            f"c{index} AS (INSERT INTO {quote(meta.db_table)} ({columns}) "
            f"VALUES ({placeholders}) {clause})"
        )
        if pk_from_database:
            returning.append((index, row))
    selected = ", ".join(f"(SELECT * FROM c{index})" for index, _ in returning) or "1"
    if wake_dispatcher:
        # Last in the select list, so that the values zipped below are the inserted keys.
        selected += ", pg_notify(%s, '')"
        params.append(DISPATCH_CHANNEL)
    # Inside a caller's transaction a savepoint keeps a violation from aborting all of it;
    # in autocommit (the API's requests) the statement is its own transaction.
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} SELECT {selected}", params)
        values = cursor.fetchone()
    for (_, row), value in zip(returning, values or (), strict=False):
        row.pk = value
    for row in rows:
        row._state.adding = False
        row._state.db = connection.alias


def is_unique_violation(exc: IntegrityError, *, constraint: str, table: str) -> bool:
    """Whether ``exc`` is the violation of this unique constraint (PostgreSQL names it;
    SQLite names the table and columns in its message)."""
    diag = getattr(getattr(exc, "__cause__", None), "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name == constraint
    return f"{table}." in str(exc)


def copy_insert(model: type[Model], rows: Sequence[dict[str, Any]], *, chunk: int = 500) -> None:
    """Insert many new rows of ``model``, given as ``{attname: value}`` dicts, fast.

    A field a row leaves out takes its default (a callable default is called per row, so
    each row gets its own UUID or token; ``auto_now``/``auto_now_add`` take the time of the
    call); an auto-increment primary key is left to the database. On PostgreSQL the rows go
    in one ``COPY ... FROM STDIN`` (a stream, not a statement per row, and no model instance
    or SQL compiled per row: for thousands of rows it is many times cheaper than
    ``bulk_create``). Elsewhere (SQLite) they go through ``bulk_create`` in chunks of
    ``chunk``. No signals are sent, no ``save`` is called. Join the caller's transaction.
    """
    if not rows:
        return
    fields = [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField | models.BigAutoField))
    ]
    now = timezone.now()
    filled: list[dict[str, Any]] = []
    for row in rows:
        values = dict(row)
        for field in fields:
            if field.attname in values:
                continue
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                values[field.attname] = now
            else:
                values[field.attname] = field.get_default()
        filled.append(values)
    if connection.vendor != "postgresql":
        for start in range(0, len(filled), chunk):
            model._default_manager.bulk_create(
                [model(**values) for values in filled[start : start + chunk]]
            )
        return
    # Values go to COPY as Python objects, which psycopg writes in COPY's text format; only
    # JSON needs wrapping (as Django's JSONField does, without its per-value machinery).
    from psycopg.types.json import Jsonb

    is_json = [isinstance(field, models.JSONField) for field in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, for its COPY support
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608
            for values in filled:
                copy.write_row(
                    [
                        Jsonb(value) if json and value is not None else value
                        for value, json in zip(
                            (values[field.attname] for field in fields), is_json, strict=True
                        )
                    ]
                )
