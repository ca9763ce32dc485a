"""Shared OpenAPI pieces: the auth headers, Idempotency-Key, the error envelope and responses."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description=(
        "1 to 255 printable ASCII characters, unique per create. A retry with the same key "
        "and body replays the first answer (`Idempotent-Replayed: true`); keys are kept 24 h."
    ),
)
REQUEST_ID = OpenApiParameter(
    "X-Request-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Echoed on the response; generated when absent.",
)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


COMMON_ERRORS = {
    400: error(
        "`malformed_json` or `validation_error` (also for a query parameter it does not know)."
    ),
    401: error(
        "`authentication_failed`: the message names a missing `X-API-Key` or `X-Tenant-ID`; "
        "a key that is unknown, revoked or another tenant's gets one and the same message."
    ),
    403: error("`tenant_suspended`."),
    429: error("`rate_limited`; see `Retry-After`."),
    503: error(
        "`service_unavailable`: the database cannot be reached; retry after `Retry-After` "
        "seconds (a create with the same `Idempotency-Key`)."
    ),
}
NOT_FOUND = {404: error("`not_found` (another tenant's object is not found either).")}
CREATE_ERRORS = {
    **COMMON_ERRORS,
    400: error("`validation_error`, `malformed_json` or `idempotency_key_missing`."),
    409: error("`idempotency_key_in_use`: the first request with this key is still running."),
    413: error("`payload_too_large`."),
    422: error("`idempotency_key_reused`: the key was used with a different body."),
}


class RequiredBodySchema(AutoSchema):
    """For views whose body is documented as a raw schema yet is required (the MTN callback
    doors: an empty body is not JSON, so 400 ``malformed_json``)."""

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True
        return body
