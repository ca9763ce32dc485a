"""The two doors for MTN callbacks, and their health. Thin: check, store, answer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Max
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.errors import GatewayError, NotFound
from gateway.openapi import RequiredBodySchema, error
from gateway.parsers import read_limited
from payments.representation import iso
from webhooks.inbound import callback_receive, transfer_by_token
from webhooks.models import MtnCallback
from webhooks.signing import inbound_signature_valid
from webhooks.throttling import CallbackRateThrottle


class InvalidSignature(GatewayError):
    code = "invalid_signature"
    http_status = 401
    default_message = "X-Signature-256 is missing or does not match the body."


_OK = inline_serializer("CallbackAccepted", {"status": serializers.CharField()})
_CALLBACK_BODY = {
    "application/json": {
        # No "type": any JSON is stored and answered 200; only an object can change anything.
        "description": "MTN's status JSON object: externalId, amount, currency, payer or "
        "payee, financialTransactionId, status, reason (a string or {code, message}). Any "
        "other JSON is stored and changes nothing; a body that is not JSON is 400.",
    }
}
_TOO_LARGE = error("`payload_too_large`: the body is over 64 KB.")


class _CallbackView(APIView):
    schema = RequiredBodySchema()  # documentation only: the body is required
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [CallbackRateThrottle]

    def _raw_body(self, request: Request) -> bytes:
        # The signature covers the exact bytes: read them before anything parses the body.
        return read_limited(request._request)

    @staticmethod
    def _remote_addr(request: Request) -> str:
        return request.META.get("REMOTE_ADDR", "")


def _callback_docs(operation_id: str, summary: str, refusal: tuple[int, str]) -> Any:
    """The OpenAPI description of one callback door and method (POST and PUT alike)."""
    status, text = refusal
    return extend_schema(
        operation_id=operation_id,
        tags=["MTN callbacks"],
        summary=summary,
        request=_CALLBACK_BODY,
        responses={
            200: _OK,
            400: error("`malformed_json`."),
            status: error(text),
            413: _TOO_LARGE,
            429: error("`rate_limited`."),
            503: error(
                "`service_unavailable`: the database cannot be reached, nothing was stored; "
                "MTN retries later (`Retry-After`)."
            ),
        },
        auth=[],
        # MTN's doors, not the merchant's: kept out of the merchant document (and so out of
        # every client generated from it); the README and the contract describe them.
        exclude=True,
    )


_SIGNED_REFUSAL = (401, "`invalid_signature`.")
_TOKEN_REFUSAL = (404, "`not_found`: unknown token.")
_PUT_SUMMARY = "The same, as PUT (MTN uses both methods)"


class MtnSignedCallbackView(_CallbackView):
    @_callback_docs(
        "mtn_callback_signed",
        "MTN callback through a signing relay (X-Signature-256)",
        _SIGNED_REFUSAL,
    )
    def post(self, request: Request) -> Response:
        raw_body = self._raw_body(request)
        if not inbound_signature_valid(
            secret=settings.MTN_WEBHOOK_SECRET,
            raw_body=raw_body,
            header=request.headers.get("X-Signature-256"),
        ):
            raise InvalidSignature()
        callback_receive(
            door=MtnCallback.Door.SIGNED,
            method=request.method,
            raw_body=raw_body,
            headers=request.headers,
            remote_addr=self._remote_addr(request),
        )
        return Response({"status": "ok"})

    @_callback_docs("mtn_callback_signed_put", _PUT_SUMMARY, _SIGNED_REFUSAL)
    def put(self, request: Request) -> Response:
        return self.post(request)


class MtnTokenCallbackView(_CallbackView):
    @_callback_docs(
        "mtn_callback_token",
        "MTN callback on a payment's own unguessable URL (always confirmed with MTN)",
        _TOKEN_REFUSAL,
    )
    def post(self, request: Request, token: str) -> Response:
        transfer = transfer_by_token(token)
        if transfer is None:
            raise NotFound()
        raw_body = self._raw_body(request)
        callback_receive(
            door=MtnCallback.Door.TOKEN,
            method=request.method,
            raw_body=raw_body,
            headers=request.headers,
            remote_addr=self._remote_addr(request),
            transfer=transfer,
        )
        return Response({"status": "ok"})

    @_callback_docs("mtn_callback_token_put", _PUT_SUMMARY, _TOKEN_REFUSAL)
    def put(self, request: Request, token: str) -> Response:
        return self.post(request, token)


class MtnCallbackHealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="mtn_callback_health",
        tags=["Health"],
        summary="When the last MTN callback was processed (read from the database)",
        description=(
            "For monitoring: `last_processed` is when the gateway last applied a callback from "
            "MTN (null: never), the same in every process."
        ),
        responses={
            200: inline_serializer(
                "CallbackHealth",
                {
                    "status": serializers.CharField(),
                    "last_processed": serializers.DateTimeField(allow_null=True),
                },
            ),
            405: OpenApiResponse(description="`method_not_allowed`."),
            503: error("`service_unavailable`: the database cannot be reached."),
        },
        auth=[],
    )
    def get(self, request: Request) -> Response:
        last = MtnCallback.objects.aggregate(last=Max("processed_at"))["last"]
        return Response({"status": "ok", "last_processed": iso(last) if last else None})
