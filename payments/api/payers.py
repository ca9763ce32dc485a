"""``GET /api/v1/payers/{msisdn}?currency=UGX``: the payer look-up. Thin: parse, ask, answer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from gateway import metrics
from gateway.money import SUPPORTED_CURRENCIES
from gateway.openapi import COMMON_ERRORS, REQUEST_ID, error
from gateway.query import KnownQueryParamsMixin
from payments.payers import parse_payer_query, payer_lookup
from tenants.authentication import ApiKeyRateThrottle, TenantPrincipal
from tenants.rates import rate_hit


class PayerLookupRateThrottle(BaseThrottle):
    """``PAYER_LOOKUP_RATE_LIMIT`` per API key, counted apart from the key's general rate.

    A look-up asks MTN and reveals a name: a tight limit of its own keeps it from being used
    to sweep through numbers. Counted like the key's general rate (``tenants.rates``): one
    Redis round trip, and with Redis unreachable the look-up goes through (fail open, counted
    in ``momo_rate_limit_fail_open_total{scope="payer_lookup"}``) rather than failing.
    """

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, TenantPrincipal):
            return True
        usage = rate_hit(
            scope="payer_lookup",
            key=str(principal.api_key.pk),
            rate=settings.PAYER_LOOKUP_RATE_LIMIT,
        )
        if usage is None or not usage.should_limit:
            return True
        self._wait = max(usage.time_left, 1.0)
        metrics.rate_limited(scope="payer_lookup")
        return False

    def wait(self) -> float | None:
        return self._wait


class PayerSerializer(serializers.Serializer):
    msisdn = serializers.CharField(help_text="The number looked up, digits only.")
    active = serializers.BooleanField(help_text="Whether it is an active MoMo account.")
    name = serializers.CharField(
        allow_null=True, help_text="The account holder's name as MTN knows it; null if unknown."
    )


class PayerLookupView(KnownQueryParamsMixin, APIView):
    throttle_classes = [ApiKeyRateThrottle, PayerLookupRateThrottle]
    query_params = {"GET": ("currency",)}

    @extend_schema(
        operation_id="payers_retrieve",
        tags=["Payers"],
        summary="Look up a payer: is the number an active MoMo account, and whose",
        description=(
            "Asks MTN, through the MTN account that would carry a payment in `currency` for "
            "this tenant, whether the number is an active MoMo account and its holder's name. "
            "Nothing is sent to the number's owner. A number MTN does not know answers "
            '`{"active": false, "name": null}`. Limited to `PAYER_LOOKUP_RATE_LIMIT` per API '
            "key (default 30 a minute) on top of the key's general rate; every look-up is "
            "audited with the number masked."
        ),
        parameters=[
            OpenApiParameter(
                "msisdn",
                {"type": "string", "pattern": r"^\+?[0-9]{9,15}$"},
                OpenApiParameter.PATH,
                description="9 to 15 digits with the country code; a leading + is accepted.",
            ),
            OpenApiParameter(
                "currency",
                {"type": "string", "enum": list(SUPPORTED_CURRENCIES)},
                required=True,
                description="The currency a payment would be in; it picks the MTN account.",
            ),
            REQUEST_ID,
        ],
        responses={
            200: PayerSerializer,
            **COMMON_ERRORS,
            400: error(
                "`validation_error`: a malformed number or currency, or an unknown query parameter."
            ),
            422: error(
                "`currency_not_supported`: no MTN account carries the currency; the message "
                "names those that are."
            ),
            502: error(
                "`mtn_unavailable`: MTN could not answer now (try again shortly), or refused "
                "the gateway's own credentials for this market (the message says so: "
                "retrying will not help until the operator fixes them)."
            ),
            503: error(
                "`mtn_busy`: too many calls are waiting on MTN in this process; or "
                "`service_unavailable`: the database cannot be reached. Retry after "
                "`Retry-After` seconds."
            ),
        },
    )
    def get(self, request: Request, msisdn: str) -> Response:
        number, currency = parse_payer_query(msisdn=msisdn, params=request.query_params)
        principal = request.user
        payer = payer_lookup(
            tenant=principal.tenant, msisdn=number, currency=currency, actor=principal.actor
        )
        return Response({"msisdn": payer.msisdn, "active": payer.active, "name": payer.name})


urlpatterns = [
    path("payers/<str:msisdn>", PayerLookupView.as_view(), name="payer-lookup"),
]
