"""The merchant API for payout batches. Thin: parse, call one service or selector, render.

``POST /payout_batches`` takes JSON or ``text/csv`` (this view's own parsers: the rest of
the API parses every body as JSON), with a body limit of its own
(``PAYOUT_BATCH_MAX_BODY_BYTES``) since 5,000 items are far more than one payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import QueryDict, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.errors import ValidationFailed
from gateway.idempotency import (
    Claim,
    Executed,
    read_idempotency_key,
    request_fingerprint,
    run_idempotent,
)
from gateway.models import IdempotencyKey
from gateway.money import SUPPORTED_CURRENCIES
from gateway.openapi import COMMON_ERRORS, CREATE_ERRORS, IDEMPOTENCY_KEY, NOT_FOUND, REQUEST_ID
from gateway.openapi import error as error_response
from gateway.parsers import loads_strict, read_limited
from gateway.query import KnownQueryParamsMixin
from payments import selectors
from payments.api.batch_input import (
    CSV_QUERY_PARAMS,
    MAX_ITEMS,
    parse_batch_csv,
    parse_batch_json,
)
from payments.api.serializers import (
    PayoutBatchCreateSerializer,
    PayoutBatchListSerializer,
    PayoutBatchSerializer,
    PayoutListSerializer,
    batch_create_examples,
    batch_example,
    batch_items_example,
    batch_list_example,
)
from payments.models import PayoutBatch
from payments.representation import (
    ITEMS_CSV_HEADER,
    batch_representation,
    items_csv_lines,
    transfer_representation,
)
from payments.services.batches import payout_batch_create_and_answer
from payments.states import Status


@dataclass(frozen=True)
class CsvBody:
    """A ``text/csv`` body as text, for the view to read with the query string."""

    text: str


class BatchJSONParser(BaseParser):
    """The API's strict JSON, with the batch's larger body limit."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = read_limited(stream, settings.PAYOUT_BATCH_MAX_BODY_BYTES)
        if not raw.strip():
            return {}
        return loads_strict(raw)


class BatchCSVParser(BaseParser):
    """``text/csv``, UTF-8 (a byte-order mark is accepted), for this view only."""

    media_type = "text/csv"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = read_limited(stream, settings.PAYOUT_BATCH_MAX_BODY_BYTES)
        try:
            return CsvBody(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                "The CSV must be UTF-8 text.", fields={"body": ["Is not UTF-8 text."]}
            ) from exc


class _JsonAnswers:
    """Answers (errors included) are JSON whatever ``format`` or ``Accept`` says; the one
    exception, the CSV report, is a streamed response built by the view itself."""

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        renderer = JSONRenderer()
        return renderer, renderer.media_type


def _next_url(request: Request, cursor: str | None) -> str | None:
    if not cursor:
        return None
    params = QueryDict(mutable=True)
    params.update(request.query_params)
    params["cursor"] = cursor
    return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


_LIMIT = OpenApiParameter(
    "limit", {"type": "integer", "minimum": 1, "maximum": 200}, description="1 to 200; default 50."
)
_CURSOR = OpenApiParameter("cursor", OpenApiTypes.STR, description="The `next` link's cursor.")
_BATCH_ID = OpenApiParameter(
    "id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The batch's `id`, as the create answered it.",
)
_CSV_QUERY = [
    OpenApiParameter(
        "currency",
        OpenApiTypes.STR,
        enum=list(SUPPORTED_CURRENCIES),
        description="With a `text/csv` body only (required then): the batch's currency.",
    ),
    OpenApiParameter(
        "reference",
        {"type": "string", "maxLength": 64},
        description="With a `text/csv` body only: your reference for the batch.",
    ),
    OpenApiParameter(
        "description",
        {"type": "string", "maxLength": 160},
        description="With a `text/csv` body only: the batch's description.",
    ),
]


@extend_schema_view(
    post=extend_schema(
        operation_id="payout_batches_create",
        tags=["Payout batches"],
        summary="Pay many payees in one request (payroll, commissions)",
        description=(
            f"1 to {MAX_ITEMS:,} payouts in one currency, as JSON or as `text/csv` with the "
            "header `payee,amount,reference,description` (`currency` and `reference` then go "
            "in the query string). All or nothing: a batch with any invalid item is 400 "
            "`validation_error` with `fields` keyed by item (`items[17].amount`) or CSV line "
            "(`line 19`), and nothing is created. The total is reserved from the available "
            "balance at once (422 `insufficient_funds`, nothing created, when it is short; "
            "nothing is reserved through your own MTN account). Every item becomes an "
            "ordinary payout (listed in `/payouts` with its `batch`), sent to MTN within the "
            "account's limits and sending its own `payout.*` webhooks; a failed item gives "
            "its amount back. `payout_batch.completed` is sent, with the batch, when the "
            "last item is final. One `Idempotency-Key` covers the whole batch."
        ),
        request={
            "application/json": PayoutBatchCreateSerializer,
            "text/csv": OpenApiTypes.STR,
        },
        parameters=[IDEMPOTENCY_KEY, *_CSV_QUERY, REQUEST_ID],
        responses={
            201: PayoutBatchSerializer,
            **CREATE_ERRORS,
            422: error_response(
                "`insufficient_funds`: the batch's total is more than the available balance "
                "(nothing is created; stored under the Idempotency-Key), or "
                "`idempotency_key_reused`."
            ),
        },
        examples=[*batch_create_examples(), batch_example(status_code="201")],
    ),
    get=extend_schema(
        operation_id="payout_batches_list",
        tags=["Payout batches"],
        summary="List payout batches, newest first",
        description=(
            "Your payout batches, newest first, with each one's progress (`counts` by status "
            "and `amount_succeeded`), filtered by `status` (`PROCESSING` or `COMPLETED`) or "
            "your `reference`; 50 a page by default, the next page through `next`."
        ),
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=PayoutBatch.State.values),
            OpenApiParameter("reference", {"type": "string", "maxLength": 64}),
            _LIMIT,
            _CURSOR,
            REQUEST_ID,
        ],
        responses={200: PayoutBatchListSerializer, **COMMON_ERRORS},
        examples=[batch_list_example()],
    ),
)
class PayoutBatchCollectionView(KnownQueryParamsMixin, APIView):
    parser_classes = [BatchJSONParser, BatchCSVParser]
    query_params = {"GET": selectors.BATCH_LIST_PARAMETERS, "POST": CSV_QUERY_PARAMS}

    def post(self, request: Request) -> Response:
        tenant = request.user.tenant
        key = read_idempotency_key(request.headers)
        data = request.data
        if not isinstance(data, CsvBody) and request.content_type.startswith("text/csv"):
            data = CsvBody("")  # an empty body is never handed to a parser
        query = {name: request.query_params[name] for name in request.query_params}
        if isinstance(data, CsvBody):
            fingerprint_data: Any = {"csv": data.text, "query": query}
        else:
            if query:
                raise ValidationFailed(
                    "Query parameters go with a text/csv body; a JSON body holds them itself.",
                    fields={name: ["Only with a text/csv body."] for name in sorted(query)},
                )
            fingerprint_data = data
        fingerprint = request_fingerprint(
            method=request.method, path=request.path, data=fingerprint_data
        )

        def prepare() -> Any:
            if isinstance(data, CsvBody):
                return parse_batch_csv(data.text, request.query_params)
            return parse_batch_json(data)

        def execute(validated: Any, claim: Claim) -> Executed:
            return payout_batch_create_and_answer(
                tenant=tenant, actor=request.user.actor, request=validated, idempotency_claim=claim
            )

        def recover(claim: IdempotencyKey) -> Executed | None:
            batch = PayoutBatch.objects.filter(tenant=tenant, pk=claim.resource_id).first()
            return Executed(201, batch_representation(batch)) if batch else None

        return run_idempotent(
            tenant=tenant,
            key=key,
            fingerprint=fingerprint,
            prepare=prepare,
            execute=execute,
            recover=recover,
        )

    def get(self, request: Request) -> Response:
        filters = selectors.parse_batch_filters(request.query_params)
        page = selectors.payout_batch_list(tenant=request.user.tenant, filters=filters)
        return Response(
            {
                "results": [batch_representation(batch) for batch in page.results],
                "next": _next_url(request, page.next_cursor),
            }
        )


@extend_schema_view(
    get=extend_schema(
        operation_id="payout_batches_retrieve",
        tags=["Payout batches"],
        summary="Retrieve a payout batch and its progress",
        description=(
            "The batch as it stands: how many of its payouts are `PENDING`, `SUCCESSFUL` and "
            "`FAILED`, the amount paid so far, and `COMPLETED` with `completed_at` once every "
            "payout is final. Another tenant's batch is not found."
        ),
        parameters=[_BATCH_ID, REQUEST_ID],
        responses={200: PayoutBatchSerializer, **COMMON_ERRORS, **NOT_FOUND},
        examples=[batch_example(status_code="200", completed=True)],
    )
)
class PayoutBatchDetailView(KnownQueryParamsMixin, APIView):
    def get(self, request: Request, id: str) -> Response:
        batch = selectors.payout_batch_get(tenant=request.user.tenant, batch_id=id)
        return Response(batch_representation(batch))


@extend_schema_view(
    get=extend_schema(
        operation_id="payout_batches_payouts",
        tags=["Payout batches"],
        summary="The batch's payouts, in the batch's order",
        description=(
            "Every payout the batch made, as ordinary payouts (each with its `status` and "
            "`failure_reason`), in the order of the batch's items, filtered by `status` (e.g. "
            "`FAILED` to see what to pay again); 50 a page by default. The same as a CSV file: "
            "`GET /api/v1/payout_batches/{id}/payouts.csv`."
        ),
        parameters=[
            _BATCH_ID,
            OpenApiParameter("status", OpenApiTypes.STR, enum=Status.values),
            _LIMIT,
            _CURSOR,
            REQUEST_ID,
        ],
        responses={200: PayoutListSerializer, **COMMON_ERRORS, **NOT_FOUND},
        examples=[batch_items_example()],
    )
)
class PayoutBatchPayoutsView(_JsonAnswers, KnownQueryParamsMixin, APIView):
    # ``format`` is not documented here: ``?format=csv`` still answers the CSV (the
    # contract's form, for curl), but a generated client reaches it through the .csv path,
    # whose one answer is text/csv (a client generated from one operation answering both
    # parses JSON only).
    query_params = {"GET": selectors.BATCH_ITEM_PARAMETERS}

    def get(self, request: Request, id: str) -> Any:
        batch = selectors.payout_batch_get(tenant=request.user.tenant, batch_id=id)
        filters = selectors.parse_batch_item_filters(request.query_params)
        if filters.format == "csv":
            return _items_csv(batch, filters.status)
        page = selectors.payout_batch_items(batch=batch, filters=filters)
        return Response(
            {
                "results": [transfer_representation(payout) for payout in page.results],
                "next": _next_url(request, page.next_cursor),
            }
        )


@extend_schema_view(
    get=extend_schema(
        operation_id="payout_batches_payouts_csv",
        tags=["Payout batches"],
        summary="The batch's payouts and their outcomes as a CSV file",
        description=(
            "Every payout of the batch (matching `status`; no pagination), in the order of "
            "the batch's items, as a CSV file with the header `"
            + ",".join(ITEMS_CSV_HEADER)
            + "`: the results to reconcile a payroll with. "
            "`GET /api/v1/payout_batches/{id}/payouts?format=csv` answers the same."
        ),
        parameters=[
            _BATCH_ID,
            OpenApiParameter("status", OpenApiTypes.STR, enum=Status.values),
            REQUEST_ID,
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="The CSV file (`Content-Disposition: attachment`).",
            ),
            **COMMON_ERRORS,
            **NOT_FOUND,
        },
    )
)
class PayoutBatchPayoutsCsvView(_JsonAnswers, KnownQueryParamsMixin, APIView):
    query_params = {"GET": ("status",)}

    def get(self, request: Request, id: str) -> StreamingHttpResponse:
        batch = selectors.payout_batch_get(tenant=request.user.tenant, batch_id=id)
        filters = selectors.parse_batch_item_filters(request.query_params)
        return _items_csv(batch, filters.status)


def _items_csv(batch: PayoutBatch, status: str | None) -> StreamingHttpResponse:
    rows = selectors.payout_batch_items_iter(batch=batch, status=status)
    response = StreamingHttpResponse(items_csv_lines(rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="payout-batch-{batch.pk}.csv"'
    return response
