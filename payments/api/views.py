"""The merchant API for payments, payouts and refunds. Thin: parse, call one service, serialize."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.idempotency import (
    Claim,
    Executed,
    read_idempotency_key,
    request_fingerprint,
    run_idempotent,
)
from gateway.models import IdempotencyKey
from gateway.openapi import (
    COMMON_ERRORS,
    CREATE_ERRORS,
    IDEMPOTENCY_KEY,
    NOT_FOUND,
    PREFER,
    REQUEST_ID,
    error,
)
from gateway.prefer import preferred_wait
from gateway.query import KnownQueryParamsMixin
from payments import selectors, services
from payments.api.serializers import (
    EventListSerializer,
    PaymentCreateSerializer,
    PaymentListSerializer,
    PaymentSerializer,
    PayoutCreateSerializer,
    PayoutListSerializer,
    PayoutSerializer,
    RefundCreateSerializer,
    RefundListSerializer,
    RefundSerializer,
    create_example,
    id_parameter,
    list_example,
    object_example,
)
from payments.models import MoneyTransfer, Payment, Payout, Refund
from payments.representation import event_representation, transfer_representation
from payments.routing import check_currency_carried
from payments.states import Status

# The list's query parameters, besides the party filter (``payer`` or ``payee``); any other
# is refused with 400 validation_error (gateway.query).
LIST_QUERY_PARAMS = ("status", "reference", "created_after", "created_before", "limit", "cursor")
LIST_PARAMETERS = [
    OpenApiParameter("status", OpenApiTypes.STR, enum=Status.values),
    OpenApiParameter("reference", {"type": "string", "maxLength": 64}),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Inclusive; ISO 8601."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Exclusive; ISO 8601."),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 200},
        description="1 to 200; default 50.",
    ),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="The `next` link's cursor."),
    REQUEST_ID,
]


class TransferViewMixin(KnownQueryParamsMixin):
    model: ClassVar[type[MoneyTransfer]]
    create_serializer: ClassVar[type[serializers.Serializer]]
    # Per-API-key rate limit (the tenant's rate_limit or RATE_LIMIT_DEFAULT): 429 rate_limited.


class TransferCollectionView(TransferViewMixin, APIView):
    def get_query_params(self) -> dict[str, tuple[str, ...]]:
        return {"GET": (*LIST_QUERY_PARAMS, self.model.party_field)}

    def post(self, request: Request) -> Response:
        tenant = request.user.tenant
        key = read_idempotency_key(request.headers)
        data = request.data
        fingerprint = request_fingerprint(method=request.method, path=request.path, data=data)

        def prepare() -> dict[str, Any]:
            serializer = self.create_serializer(data=data)
            serializer.is_valid(raise_exception=True)
            # Refused before anything is stored, under the key too: a retry with the same
            # key once an account carries the currency goes through.
            check_currency_carried(
                tenant_id=tenant.pk, currency=serializer.validated_data["currency"]
            )
            return serializer.validated_data

        wait = preferred_wait(request.headers)

        def execute(validated: dict[str, Any], claim: Claim) -> Executed:
            return services.transfer_create_and_submit(
                model=self.model,
                tenant=tenant,
                actor=request.user.actor,
                validated=validated,
                idempotency_claim=claim,
                wait=wait,
            )

        def recover(claim: IdempotencyKey) -> Executed | None:
            transfer = self.model.objects.filter(tenant=tenant, pk=claim.resource_id).first()
            return Executed(201, transfer_representation(transfer)) if transfer else None

        return run_idempotent(
            tenant=tenant,
            key=key,
            fingerprint=fingerprint,
            prepare=prepare,
            execute=execute,
            recover=recover,
        )

    def get(self, request: Request) -> Response:
        filters = selectors.parse_list_filters(
            request.query_params, party_field=self.model.party_field
        )
        page = selectors.transfer_list(
            model=self.model, tenant=request.user.tenant, filters=filters
        )
        next_url = None
        if page.next_cursor:
            params = QueryDict(mutable=True)
            params.update(request.query_params)
            params["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response(
            {"results": [transfer_representation(t) for t in page.results], "next": next_url}
        )


# ``id`` is the URL's parameter name, so that the OpenAPI paths read /payments/{id}.
class TransferDetailView(TransferViewMixin, APIView):
    def get(self, request: Request, id: str) -> Response:
        transfer = selectors.transfer_get(
            model=self.model, tenant=request.user.tenant, transfer_id=id
        )
        return Response(transfer_representation(transfer))


class TransferEventsView(TransferViewMixin, APIView):
    def get(self, request: Request, id: str) -> Response:
        transfer = selectors.transfer_get(
            model=self.model, tenant=request.user.tenant, transfer_id=id
        )
        events = selectors.transfer_events(transfer=transfer)
        return Response({"results": [event_representation(e) for e in events]})


def _party_parameter(kind: str) -> OpenApiParameter:
    party = "payer" if kind == "payment" else "payee"
    return OpenApiParameter(
        party,
        {"type": "string", "pattern": r"^\+?[0-9]{9,15}$"},
        description=f"Only {kind}s with this {party} (MSISDN; a leading `+` is dropped).",
        examples=[OpenApiExample("Number", summary="An MSISDN", value="256772123456")],
    )


_DESCRIPTIONS = {
    "payment": {
        "create": (
            "Asks the payer's MoMo wallet for `amount` in `currency`. Answered at once with "
            "the payment `PENDING` (or, with `Prefer: wait=N`, once MTN has first answered); "
            "the payer approves on their phone and the payment becomes `SUCCESSFUL` or "
            "`FAILED`: you learn it by webhook or by retrieving it. Retry with the same "
            "`Idempotency-Key` and body after a timeout: you get the first answer again, "
            "never a second payment. A currency no MTN account carries is "
            "`422 currency_not_supported` and nothing is stored."
        ),
        "list": (
            "Your payments, newest first, filtered by status, reference, payer or creation "
            "time; follow `next` for the next page. A parameter this operation does not "
            "list is `400 validation_error`."
        ),
        "retrieve": "The payment as it is now; another tenant's is `404 not_found`.",
        "events": (
            "What happened to the payment, oldest first: created, submitted to MTN, "
            "succeeded or failed, refunded; each with when and who (your API key, MTN, "
            "the gateway or a staff member)."
        ),
    },
    "payout": {
        "create": (
            "Sends `amount` in `currency` from your balance to the payee's MoMo wallet. The "
            "amount is set aside from your available balance at once (`422 "
            "insufficient_funds` when it is short, and nothing is created) and given back "
            "if the payout fails. Answered at once with the payout `PENDING`; it becomes "
            "`SUCCESSFUL` or `FAILED`, told by webhook. Retry with the same "
            "`Idempotency-Key` and body after a timeout: never a second payout."
        ),
        "list": (
            "Your payouts, newest first, filtered by status, reference, payee or creation "
            "time; follow `next` for the next page."
        ),
        "retrieve": "The payout as it is now; another tenant's is `404 not_found`.",
        "events": "What happened to the payout, oldest first, with when and who.",
    },
}


def _documented(
    kind: str, create_serializer: type, item: type, listing: type, create_errors: dict
) -> dict[str, Any]:
    tag = [f"{kind.capitalize()}s"]
    text = _DESCRIPTIONS[kind]
    return {
        "collection": {
            "post": extend_schema(
                operation_id=f"{kind}s_create",
                tags=tag,
                summary=f"Create a {kind}",
                description=text["create"],
                request=create_serializer,
                parameters=[IDEMPOTENCY_KEY, PREFER, REQUEST_ID],
                responses={201: item, **create_errors},
                examples=[create_example(kind), object_example(kind, status_code="201")],
            ),
            "get": extend_schema(
                operation_id=f"{kind}s_list",
                tags=tag,
                summary=f"List {kind}s, newest first",
                description=text["list"],
                parameters=[*LIST_PARAMETERS, _party_parameter(kind)],
                responses={200: listing, **COMMON_ERRORS},
                examples=[list_example(kind)],
            ),
        },
        "detail": {
            "get": extend_schema(
                operation_id=f"{kind}s_retrieve",
                tags=tag,
                summary=f"Retrieve a {kind}",
                description=text["retrieve"],
                parameters=[id_parameter(kind), REQUEST_ID],
                responses={200: item, **COMMON_ERRORS, **NOT_FOUND},
                examples=[object_example(kind, status_code="200")],
            )
        },
        "events": {
            "get": extend_schema(
                operation_id=f"{kind}s_events",
                tags=tag,
                summary=f"A {kind}'s audit trail, oldest first",
                description=text["events"],
                parameters=[id_parameter(kind), REQUEST_ID],
                responses={200: EventListSerializer, **COMMON_ERRORS, **NOT_FOUND},
            )
        },
    }


def _view(base: type[APIView], model: type[MoneyTransfer], create: type, docs: dict) -> Any:
    view = type(
        f"{model.__name__}{base.__name__}", (base,), {"model": model, "create_serializer": create}
    )
    # extend_schema_view copies inherited methods before annotating them, so payments and
    # payouts each get their own OpenAPI description.
    return extend_schema_view(**docs)(view)


_payment_docs = _documented(
    "payment", PaymentCreateSerializer, PaymentSerializer, PaymentListSerializer, CREATE_ERRORS
)
_payout_docs = _documented(
    "payout",
    PayoutCreateSerializer,
    PayoutSerializer,
    PayoutListSerializer,
    {
        **CREATE_ERRORS,
        422: error(
            "`insufficient_funds`: your available balance is smaller than the amount (the "
            "message gives it; nothing is created; stored under the Idempotency-Key); "
            "`currency_not_supported` (not stored); or `idempotency_key_reused`."
        ),
    },
)

PaymentCollectionView = _view(
    TransferCollectionView, Payment, PaymentCreateSerializer, _payment_docs["collection"]
)
PaymentDetailView = _view(
    TransferDetailView, Payment, PaymentCreateSerializer, _payment_docs["detail"]
)
PaymentEventsView = _view(
    TransferEventsView, Payment, PaymentCreateSerializer, _payment_docs["events"]
)
PayoutCollectionView = _view(
    TransferCollectionView, Payout, PayoutCreateSerializer, _payout_docs["collection"]
)
PayoutDetailView = _view(TransferDetailView, Payout, PayoutCreateSerializer, _payout_docs["detail"])
PayoutEventsView = _view(TransferEventsView, Payout, PayoutCreateSerializer, _payout_docs["events"])


# --- refunds -------------------------------------------------------------------------------


@extend_schema_view(
    post=extend_schema(
        operation_id="refunds_create",
        tags=["Refunds"],
        summary="Refund a payment, wholly or in part",
        description=(
            "Pays a `SUCCESSFUL` payment back to its payer, through the MTN account that took "
            "it: `amount` (default: all that is left to refund) is set aside from your "
            "available balance at once and given back if the refund fails. Several partial "
            "refunds are allowed; together they never exceed the payment. The collection fee "
            "is not given back. Answered at once with the refund `PENDING`; `refund.succeeded` "
            "or `refund.failed` follows by webhook."
        ),
        request=RefundCreateSerializer,
        parameters=[id_parameter("payment"), IDEMPOTENCY_KEY, PREFER, REQUEST_ID],
        responses={
            201: RefundSerializer,
            **CREATE_ERRORS,
            **NOT_FOUND,
            422: error(
                "`payment_not_refundable` (the payment is not SUCCESSFUL), "
                "`refund_exceeds_payment` (more than is left to refund), `insufficient_funds` "
                "(your available balance is smaller; the message gives it), `payment_under_review` "
                "(the payment, or one of its refunds, is flagged for review because MTN's record "
                "differs from ours; staff resolve it), all stored under the Idempotency-Key; or "
                "`idempotency_key_reused` (use a new key). Nothing is created."
            ),
        },
    )
)
class PaymentRefundsView(KnownQueryParamsMixin, APIView):
    def post(self, request: Request, id: str) -> Response:
        tenant = request.user.tenant
        payment = selectors.transfer_get(model=Payment, tenant=tenant, transfer_id=id)
        key = read_idempotency_key(request.headers)
        data = request.data
        fingerprint = request_fingerprint(method=request.method, path=request.path, data=data)

        def prepare() -> dict[str, Any]:
            serializer = RefundCreateSerializer(data=data, context={"currency": payment.currency})
            serializer.is_valid(raise_exception=True)
            return serializer.validated_data

        wait = preferred_wait(request.headers)

        def execute(validated: dict[str, Any], claim: Claim) -> Executed:
            return services.refund_create_and_submit(
                payment=payment,
                actor=request.user.actor,
                validated=validated,
                idempotency_claim=claim,
                wait=wait,
            )

        def recover(claim: IdempotencyKey) -> Executed | None:
            refund = Refund.objects.filter(tenant=tenant, pk=claim.resource_id).first()
            return Executed(201, transfer_representation(refund)) if refund else None

        return run_idempotent(
            tenant=tenant,
            key=key,
            fingerprint=fingerprint,
            prepare=prepare,
            execute=execute,
            recover=recover,
        )


REFUND_LIST_PARAMETERS = [
    OpenApiParameter("payment", OpenApiTypes.UUID, description="Only this payment's refunds."),
    OpenApiParameter("status", OpenApiTypes.STR, enum=Status.values),
    *LIST_PARAMETERS[-3:],  # limit, cursor, X-Request-ID
]


@extend_schema_view(
    get=extend_schema(
        operation_id="refunds_list",
        tags=["Refunds"],
        summary="List refunds, newest first",
        description=(
            "Your refunds, newest first, of one payment (`payment`) or all, filtered by "
            "status; follow `next` for the next page."
        ),
        parameters=REFUND_LIST_PARAMETERS,
        responses={200: RefundListSerializer, **COMMON_ERRORS},
    )
)
class RefundCollectionView(KnownQueryParamsMixin, APIView):
    query_params = {"GET": selectors.REFUND_LIST_PARAMETERS}

    def get(self, request: Request) -> Response:
        filters = selectors.parse_refund_filters(request.query_params)
        page = selectors.refund_list(tenant=request.user.tenant, filters=filters)
        next_url = None
        if page.next_cursor:
            params = QueryDict(mutable=True)
            params.update(request.query_params)
            params["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response(
            {"results": [transfer_representation(r) for r in page.results], "next": next_url}
        )


_refund_docs = {
    "detail": {
        "get": extend_schema(
            operation_id="refunds_retrieve",
            tags=["Refunds"],
            summary="Retrieve a refund",
            description="The refund as it is now; another tenant's is `404 not_found`.",
            parameters=[id_parameter("refund"), REQUEST_ID],
            responses={200: RefundSerializer, **COMMON_ERRORS, **NOT_FOUND},
        )
    },
    "events": {
        "get": extend_schema(
            operation_id="refunds_events",
            tags=["Refunds"],
            summary="A refund's audit trail, oldest first",
            description="What happened to the refund, oldest first, with when and who.",
            parameters=[id_parameter("refund"), REQUEST_ID],
            responses={200: EventListSerializer, **COMMON_ERRORS, **NOT_FOUND},
        )
    },
}
RefundDetailView = _view(TransferDetailView, Refund, RefundCreateSerializer, _refund_docs["detail"])
RefundEventsView = _view(TransferEventsView, Refund, RefundCreateSerializer, _refund_docs["events"])
