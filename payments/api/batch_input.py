"""Reading a payout batch from its request: a JSON body, or CSV lines with query parameters.

All or nothing: every item is checked, and any problem is a 400 ``validation_error`` whose
``fields`` name the item (``items[17].amount``) or the CSV line (``line 19``), so that the
merchant can fix every line in one go. Each item follows a payout's own rules, read by the
same fields as ``POST /payouts`` (one field instance each, reused for every item: building
a DRF serializer per item would cost more than the whole insert of 5,000 payouts).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from gateway.errors import ValidationFailed
from gateway.money import MoneyError, parse_amount, parse_currency
from payments.api.serializers import MetadataField, MsisdnField, StrictCharField
from payments.services.batches import BatchItem, BatchRequest

MAX_ITEMS = 5000
# Past this many problems the answer lists the first ones only (and says how many there are).
MAX_REPORTED_ERRORS = 100
CSV_COLUMNS = ("payee", "amount", "reference", "description")
CSV_REQUIRED_COLUMNS = ("payee", "amount")
CSV_QUERY_PARAMS = ("currency", "reference", "description")
BATCH_FIELDS = ("currency", "reference", "description", "items")
ITEM_FIELDS = ("payee", "amount", "reference", "description", "metadata")


class _Problems:
    """Collects field errors, keeping the first ``MAX_REPORTED_ERRORS`` keys."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}
        self.items_with_errors: set[int] = set()

    def add(self, key: str, message: str, *, item: int | None = None) -> None:
        if item is not None:
            self.items_with_errors.add(item)
        if key in self.fields:
            self.fields[key].append(message)
        elif len(self.fields) < MAX_REPORTED_ERRORS:
            self.fields[key] = [message]

    def raise_if_any(self, what: str) -> None:
        if not self.fields:
            return
        count = len(self.items_with_errors)
        if count > 1:
            message = f"{count} {what} are not valid; nothing was created."
        elif count == 1:
            message = f"One {what[:-1]} is not valid; nothing was created."
        else:
            message = "The batch is not valid; nothing was created."
        if len(self.fields) >= MAX_REPORTED_ERRORS:
            message += f" The first {MAX_REPORTED_ERRORS} problems are listed."
        raise ValidationFailed(message, fields=self.fields)


_MSISDN = MsisdnField()
_REFERENCE = StrictCharField(required=False, allow_null=True, max_length=64)
_DESCRIPTION = StrictCharField(required=False, allow_null=True, max_length=160)
_METADATA = MetadataField(required=False, allow_null=True)


def _messages(exc: serializers.ValidationError) -> list[str]:
    detail = exc.detail
    if isinstance(detail, list):
        return [str(message) for message in detail]
    if isinstance(detail, dict):
        return [str(message) for messages in detail.values() for message in messages]
    return [str(detail)]


def _check(field_: serializers.Field, value: Any) -> tuple[Any, list[str]]:
    # The common case first, without DRF's validator machinery (5,000 items, 15,000 fields):
    # a clean string within the field's length, as CharField would return it (stripped).
    if isinstance(field_, serializers.CharField) and isinstance(value, str):
        stripped = value.strip()
        if stripped and "\x00" not in stripped and len(stripped) <= (field_.max_length or 0):
            return stripped, []
    try:
        return field_.run_validation(value), []
    except serializers.ValidationError as exc:
        return None, _messages(exc)


def _read_currency(value: Any) -> tuple[str | None, list[str]]:
    if value is None:
        return None, ["This field is required."]
    try:
        return parse_currency(value), []
    except MoneyError as exc:
        return None, [str(exc)]


Report = Callable[[str, str], None]


def _read_item(
    raw: dict[str, Any], currency: str | None, report: Report
) -> tuple[BatchItem | None, str | None]:
    """One item by a payout's rules, and its reference when that alone is valid (so that a
    repeated reference is reported even on an item with other problems); each problem goes
    to ``report(field, message)``."""
    failed = False

    def fail(name: str, message: str) -> None:
        nonlocal failed
        failed = True
        report(name, message)

    for name in sorted(set(raw) - set(ITEM_FIELDS)):
        fail(str(name)[:64], "Unknown field.")
    payee = amount = None
    if raw.get("payee") is None:
        fail("payee", "This field is required.")
    else:
        payee, errors = _check(_MSISDN, raw["payee"])
        for message in errors:
            fail("payee", message)
    if raw.get("amount") is None:
        fail("amount", "This field is required.")
    else:
        try:
            amount = parse_amount(raw["amount"], currency)
        except MoneyError as exc:
            fail("amount", str(exc))
    values: dict[str, Any] = {}
    for name, checker in (
        ("reference", _REFERENCE),
        ("description", _DESCRIPTION),
        ("metadata", _METADATA),
    ):
        if raw.get(name) is None:
            continue
        values[name], errors = _check(checker, raw[name])
        for message in errors:
            fail(name, message)
    reference = values.get("reference")
    if failed or currency is None or payee is None or amount is None:
        return None, reference
    item = BatchItem(
        payee=payee,
        amount=amount,
        reference=reference,
        description=values.get("description"),
        metadata=values.get("metadata") or {},
    )
    return item, reference


def _check_unique_references(
    references: list[tuple[str, str, int]], report: Callable[[int, str, str], None]
) -> None:
    """Each repeated reference is reported on the later item, naming the first."""
    seen: dict[str, str] = {}
    for reference, where, index in references:
        first = seen.setdefault(reference, where)
        if first != where:
            report(
                index,
                where,
                f"Repeats the reference of {first}; item references must be unique within "
                "the batch.",
            )


def _read_header(
    data: dict[str, Any], problems: _Problems, *, prefix: str = ""
) -> tuple[str | None, str | None, str | None]:
    currency, errors = _read_currency(data.get("currency"))
    for message in errors:
        problems.add(f"{prefix}currency", message)
    values: dict[str, Any] = {}
    for name, checker in (("reference", _REFERENCE), ("description", _DESCRIPTION)):
        if data.get(name) is None:
            continue
        values[name], errors = _check(checker, data[name])
        for message in errors:
            problems.add(f"{prefix}{name}", message)
    return currency, values.get("reference"), values.get("description")


def _check_count(count: int, key: str, problems: _Problems) -> bool:
    if count < 1:
        problems.add(key, "A batch has at least one item.")
        return False
    if count > MAX_ITEMS:
        problems.add(key, f"A batch has at most {MAX_ITEMS} items, not {count}.")
        return False
    return True


def parse_batch_json(data: Any) -> BatchRequest:
    """``{"currency", "reference"?, "description"?, "items": [...]}``; raises
    ``ValidationFailed`` with ``fields`` keyed ``items[i].<field>`` (0-based ``i``)."""
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The body must be a JSON object.", fields={"non_field_errors": ["Expected an object."]}
        )
    problems = _Problems()
    for name in sorted(set(data) - set(BATCH_FIELDS)):
        problems.add(str(name)[:64], "Unknown field.")
    currency, reference, description = _read_header(data, problems)
    raw_items = data.get("items")
    items: list[BatchItem] = []
    references: list[tuple[str, str, int]] = []
    if raw_items is None:
        problems.add("items", "This field is required.")
    elif not isinstance(raw_items, list):
        problems.add("items", "Must be a list of payouts.")
    elif _check_count(len(raw_items), "items", problems):
        for index, raw in enumerate(raw_items):
            if not isinstance(raw, dict):
                problems.add(f"items[{index}]", "Must be an object.", item=index)
                continue

            def report(name: str, message: str, index: int = index) -> None:
                problems.add(f"items[{index}].{name}", message, item=index)

            item, item_reference = _read_item(raw, currency, report)
            if item is not None:
                items.append(item)
            if item_reference is not None:
                references.append((item_reference, f"items[{index}]", index))

    def repeated(index: int, where: str, message: str) -> None:
        problems.add(f"{where}.reference", message, item=index)

    _check_unique_references(references, repeated)
    problems.raise_if_any("items")
    assert currency is not None  # noqa: S101 - a missing currency is a problem raised above
    return BatchRequest(
        currency=currency,
        reference=reference,
        description=description,
        items=items,
    )


def parse_batch_csv(text: str, params: Any) -> BatchRequest:
    """CSV lines under the header ``payee,amount,reference,description`` (``reference`` and
    ``description`` may be left out, or empty in a line), with the batch's ``currency``,
    ``reference`` and ``description`` from ``params`` (the query string). Raises
    ``ValidationFailed`` with ``fields`` keyed ``line N`` (the file's line, 1 = header), each
    message naming its column."""
    problems = _Problems()
    currency, reference, description = _read_header(
        {name: params.get(name) for name in CSV_QUERY_PARAMS}, problems
    )
    if "\x00" in text:
        raise ValidationFailed(
            "The CSV holds a NUL character.", fields={"body": ["Must not contain NUL characters."]}
        )
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ValidationFailed(
            "The CSV cannot be read.", fields={"line 1": [f"Not CSV: {exc}."]}
        ) from exc
    columns = [name.strip().lower() for name in header] if header else []
    unknown = [name for name in columns if name not in CSV_COLUMNS]
    missing = [name for name in CSV_REQUIRED_COLUMNS if name not in columns]
    if not columns or unknown or missing or len(set(columns)) != len(columns):
        raise ValidationFailed(
            "The CSV's first line must be the header payee,amount,reference,description.",
            fields={"line 1": ["Must be the header payee,amount,reference,description."]},
        )
    items: list[BatchItem] = []
    references: list[tuple[str, str, int]] = []
    lines = 0
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line, such as the one a trailing newline leaves
            lines += 1
            if lines > MAX_ITEMS:
                break
            if len(row) != len(columns):
                problems.add(
                    f"line {line}",
                    f"Has {len(row)} values; the header has {len(columns)}.",
                    item=lines,
                )
                continue
            raw = {name: cell for name, cell in zip(columns, row, strict=True) if cell != ""}

            def report(name: str, message: str, line: int = line, item: int = lines) -> None:
                problems.add(f"line {line}", f"{name}: {message}", item=item)

            item, item_reference = _read_item(raw, currency, report)
            if item is not None:
                items.append(item)
            if item_reference is not None:
                references.append((item_reference, f"line {line}", lines))
    except csv.Error as exc:
        problems.add(f"line {reader.line_num}", f"Not CSV: {exc}.", item=0)
    if lines > MAX_ITEMS:
        problems.add("body", f"A batch has at most {MAX_ITEMS} items; this CSV has more.")
    elif not problems.fields:
        _check_count(lines, "body", problems)

    def repeated(index: int, where: str, message: str) -> None:
        problems.add(where, f"reference: {message}", item=index)

    _check_unique_references(references, repeated)
    problems.raise_if_any("lines")
    assert currency is not None  # noqa: S101 - a missing currency is a problem raised above
    return BatchRequest(
        currency=currency,
        reference=reference,
        description=description,
        items=items,
    )
