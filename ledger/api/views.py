"""The merchant API for balances and the statement. Thin: parse, call a selector, render."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from typing import Any, cast

from django.http import QueryDict, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.money import SUPPORTED_CURRENCIES
from gateway.openapi import COMMON_ERRORS, REQUEST_ID
from gateway.query import KnownQueryParamsMixin
from ledger import selectors
from ledger.api.filters import (
    CSV_PARAMETERS,
    STATEMENT_PARAMETERS,
    StatementFilters,
    parse_statement_filters,
)
from ledger.api.representation import (
    CSV_HEADER,
    balance_representation,
    transaction_csv_row,
    transaction_representation,
)
from ledger.api.serializers import BalanceListSerializer, BalanceTransactionListSerializer
from ledger.models import STATEMENT_TYPES, LedgerTransaction
from ledger.selectors import MAX_PAGE_SIZE

STATEMENT_FILTERS = [
    OpenApiParameter("currency", OpenApiTypes.STR, enum=list(SUPPORTED_CURRENCIES)),
    OpenApiParameter("type", OpenApiTypes.STR, enum=[t.value for t in STATEMENT_TYPES]),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Inclusive; ISO 8601."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Exclusive; ISO 8601."),
]
# ``format`` is not documented on the JSON operation: ``?format=csv`` still answers the CSV
# (the contract's form, for curl), but a generated client reaches it through the CSV path,
# whose one answer is text/csv; a client generated from one operation answering both
# builds a JSON parser only.
STATEMENT_QUERY = [
    *STATEMENT_FILTERS,
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        description=f"1 to {MAX_PAGE_SIZE}; default 50.",
    ),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="The `next` link's cursor."),
    REQUEST_ID,
]
CSV_DESCRIPTION = (
    "Every matching transaction (no pagination), newest first, as a CSV file with the header "
    "`" + ",".join(CSV_HEADER) + "`: the same rows as the JSON statement. "
    "`GET /api/v1/balance/transactions?format=csv` answers the same."
)


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


class BalanceView(KnownQueryParamsMixin, APIView):
    query_params = {"GET": ()}

    @extend_schema(
        operation_id="balance_retrieve",
        tags=["Balances"],
        summary="The tenant's balances, one per currency it has ever held",
        description=(
            "For each currency you have ever held: `available` (what you can pay out or refund "
            "now) and `reserved` (what payouts and refunds still in flight hold)."
        ),
        parameters=[REQUEST_ID],
        responses={200: BalanceListSerializer, **COMMON_ERRORS},
    )
    def get(self, request: Request) -> Response:
        balances = selectors.balance_list(tenant_id=_tenant_id(request))
        return Response({"balances": [balance_representation(b) for b in balances]})


class BalanceTransactionListView(KnownQueryParamsMixin, APIView):
    query_params = {"GET": STATEMENT_PARAMETERS}

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # `format` is this endpoint's own parameter (json or csv), not DRF's renderer
        # override: answers other than the CSV itself, errors included, are JSON.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        operation_id="balance_transactions_list",
        tags=["Balances"],
        summary="The tenant's balance transactions (its statement), newest first",
        description=(
            "Every transaction that moved the available balance: `payment` (net of the "
            "collection fee), `payout` and `refund` (when created: the reservation), "
            "`payout_failure` and `refund_failure` (the reservation given back), `adjustment`, "
            "and `correction`: staff accepted MTN's final status of the payment, payout or "
            "refund in `source` over ours (MTN disagreed after it was final), and `amount`, "
            "`fee` and `net` are the difference that made (e.g. `-12.50` for a refund MTN "
            "paid after all). "
            "The `net` of all of a currency's transactions adds up to its available balance. "
            "The same rows as CSV: `GET /api/v1/balance/transactions.csv`."
        ),
        parameters=STATEMENT_QUERY,
        responses={200: BalanceTransactionListSerializer, **COMMON_ERRORS},
    )
    def get(self, request: Request) -> Any:
        filters = parse_statement_filters(request.query_params)
        tenant_id = _tenant_id(request)
        if filters.format == "csv":
            return _csv_statement(tenant_id, filters)
        page = selectors.balance_transaction_list(
            tenant_id=tenant_id,
            currency=filters.currency,
            type=filters.type,
            created_after=filters.created_after,
            created_before=filters.created_before,
            limit=filters.limit,
            cursor=filters.cursor,
        )
        next_url = None
        if page.next_cursor:
            params = QueryDict(mutable=True)
            params.update(request.query_params)
            params["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response(
            {"results": [transaction_representation(t) for t in page.results], "next": next_url}
        )


class BalanceTransactionCsvView(KnownQueryParamsMixin, APIView):
    query_params = {"GET": CSV_PARAMETERS}

    @extend_schema(
        operation_id="balance_transactions_csv",
        tags=["Balances"],
        summary="The tenant's statement as a CSV file",
        description=CSV_DESCRIPTION,
        parameters=[*STATEMENT_FILTERS, REQUEST_ID],
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="The CSV file (`Content-Disposition: attachment`).",
            ),
            **COMMON_ERRORS,
        },
    )
    def get(self, request: Request) -> Any:
        filters = parse_statement_filters(request.query_params)
        return _csv_statement(_tenant_id(request), filters)


def _csv_statement(tenant_id: uuid.UUID, filters: StatementFilters) -> StreamingHttpResponse:
    rows = selectors.balance_transaction_iter(
        tenant_id=tenant_id,
        currency=filters.currency,
        type=filters.type,
        created_after=filters.created_after,
        created_before=filters.created_before,
    )
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="balance-transactions.csv"'
    return response


def _tenant_id(request: Request) -> uuid.UUID:
    """The calling tenant's id (``request.user`` is the API key's ``TenantPrincipal``)."""
    tenant_id: uuid.UUID = cast(Any, request.user).tenant.pk
    return tenant_id


def _csv_lines(rows: Iterator[LedgerTransaction]) -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(CSV_HEADER)
    for row in rows:
        yield writer.writerow(transaction_csv_row(row))
