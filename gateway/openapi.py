"""Shared OpenAPI pieces: Idempotency-Key, the error envelope and responses, and the hook
that makes the document strict (``merchant_document``): nullable references a strict
OpenAPI 3.0.3 validator accepts, one enum per concept, request bodies that refuse unknown
fields, the response headers and the merchant webhooks."""

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
PREFER = OpenApiParameter(
    "Prefer",
    {"type": "string", "pattern": "^wait=([0-9]|10)$"},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "`wait=N` (N seconds, at most 10): answer once MTN has accepted or rejected the "
        "request, or after N seconds, whichever is first (`Preference-Applied` says it "
        "waited). Without it the create is answered at once, `PENDING`."
    ),
)
REQUEST_ID = OpenApiParameter(
    "X-Request-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Your id for this request (up to 128 letters, digits and `._:-`), echoed in the "
        "response's `X-Request-ID` and the gateway's logs; one is generated when absent."
    ),
)


class ErrorDetailSerializer(serializers.Serializer):
    """What went wrong: a stable code to branch on and a sentence to show or log."""

    code = serializers.CharField(help_text="Stable snake_case code, e.g. `validation_error`.")
    message = serializers.CharField(help_text="What went wrong and how to fix it.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="With `validation_error`: the problems of each field or query parameter.",
    )


# Named ErrorResponse, not Error: a generated client names a model's local variable after the
# model, and a model "Error" with a property "error" then fails `mypy --strict`.
class ErrorResponseSerializer(serializers.Serializer):
    """Every error answer: `{"error": {"code", "message", "fields"?}}`."""

    error = ErrorDetailSerializer()


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorResponseSerializer, description=description)


COMMON_ERRORS = {
    400: error(
        "`malformed_json` or `validation_error` (also for a query parameter it does not know)."
    ),
    401: error(
        "`authentication_failed`: no credentials (the message names the missing header), an "
        "`X-Tenant-ID` that is no tenant's slug, or a key that is unknown, revoked or another "
        "tenant's (one and the same message for all three)."
    ),
    403: error("`tenant_suspended`."),
    429: error("`rate_limited`: over your API key's rate; retry after `Retry-After` seconds."),
    503: error(
        "`service_unavailable`: the database cannot be reached; retry after `Retry-After` "
        "seconds (a create with the same `Idempotency-Key`)."
    ),
}
NOT_FOUND = {404: error("`not_found` (another tenant's object is not found either).")}
CREATE_ERRORS = {
    **COMMON_ERRORS,
    400: error("`validation_error`, `malformed_json` or `idempotency_key_missing`."),
    409: error(
        "`idempotency_key_in_use`: the first request with this key is still running; retry "
        "after `Retry-After` seconds."
    ),
    413: error("`payload_too_large`: the body is over 64 KB."),
    422: error(
        "`idempotency_key_reused` (the key was used with a different body: use a new key), or "
        "`currency_not_supported` (no MTN account carries the currency; the message names "
        "those that are; nothing is stored)."
    ),
}


class RequiredBodySchema(AutoSchema):
    """For views whose body is documented as a raw schema yet is required (the MTN callback
    doors: an empty body is not JSON, so 400 ``malformed_json``)."""

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True
        return body


# --- The document's post-processing (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) ----------

# A null a strict OpenAPI 3.0.3 reader accepts: `nullable` counts only beside a `type` in the
# same schema object, so `{"allOf": [$ref], "nullable": true}` (drf-spectacular's form) allows
# no null at all. `oneOf` of the reference and this does, for validators and generators alike.
NULL_SCHEMA: dict[str, Any] = {"type": "object", "nullable": True, "enum": [None]}

RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: yours, echoed, when you sent a sane one; else a new "
        "one. Quote it when you ask about a request.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same `Idempotency-Key` and body: nothing was done again.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Preference-Applied": {
        "description": "`wait=N` when the create waited (`Prefer: wait=N`) for MTN's first "
        "answer; absent when it answered at once.",
        "schema": {"type": "string", "example": "wait=5"},
    },
}

WEBHOOK_HEADERS = [
    ("webhook-id", "The event's id (`evt_…`), the same on every attempt: de-duplicate on it."),
    ("webhook-timestamp", "Seconds since the epoch when this attempt was signed."),
    (
        "webhook-signature",
        "`v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>` with your "
        "`whsec_` secret (several, space-separated, during a secret rotation); check it with "
        "the `standardwebhooks` library.",
    ),
]

# (the component the event's `data` is, event type suffixes, what the events say)
WEBHOOK_KINDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "payment": (
        "Payment",
        ("succeeded", "failed", "needs_review"),
        "A payment became SUCCESSFUL or FAILED, or MTN later disagreed with it (flagged for "
        "review).",
    ),
    "payout": (
        "Payout",
        ("succeeded", "failed", "needs_review"),
        "A payout became SUCCESSFUL or FAILED, or MTN later disagreed with it.",
    ),
    "refund": (
        "Refund",
        ("succeeded", "failed", "needs_review"),
        "A refund became SUCCESSFUL or FAILED, or MTN later disagreed with it.",
    ),
    "payout_batch": (
        "PayoutBatch",
        ("completed",),
        "Every payout of a batch is final.",
    ),
}

WEBHOOKS_DESCRIPTION = """\
When a payment, payout or refund becomes final (or MTN later disagrees with it, or a payout \
batch completes), the gateway POSTs an event to your webhook URL: `{"id": "evt_…", "type", \
"created_at", "data": <the object as the API shows it>}` (components `PaymentEvent`, \
`PayoutEvent`, `RefundEvent`, `PayoutBatchEvent`; any of them: `WebhookEvent`; the list is \
under `x-webhooks`). It is signed by the Standard Webhooks scheme (headers `webhook-id`, \
`webhook-timestamp`, `webhook-signature`) with your tenant's `whsec_` secret: verify it with \
the `standardwebhooks` library before trusting it. Answer 2xx; anything else (or no answer) \
is retried 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the previous failure, with the \
same `webhook-id`."""


def _nullable_references(node: Any) -> Any:
    """Rewrite every `{"allOf": [X], "nullable": true}` as `{"oneOf": [X, NULL_SCHEMA]}`."""
    if isinstance(node, list):
        return [_nullable_references(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_references(value) for key, value in node.items()}
    if node.get("nullable") is True and "type" not in node and len(node.get("allOf", [])) == 1:
        (target,) = node.pop("allOf")
        del node["nullable"]
        node["oneOf"] = [target, dict(NULL_SCHEMA)]
    return node


def _one_enum_per_concept(result: dict[str, Any]) -> None:
    """Inline enums (query parameters) become references to the component enum with the same
    values, so that a generated client has one type per concept (a status, a currency)."""
    components = result.get("components", {}).get("schemas", {})
    by_values = {
        tuple(sorted(schema["enum"], key=str)): name
        for name, schema in components.items()
        if "enum" in schema and schema.get("type") == "string"
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                name = by_values.get(tuple(sorted(schema.get("enum", []), key=str)))
                if name:
                    parameter["schema"] = {"$ref": f"#/components/schemas/{name}"}


def _response_headers(result: dict[str, Any]) -> None:
    components = result.setdefault("components", {})
    components["headers"] = {name: dict(header) for name, header in RESPONSE_HEADERS.items()}

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/headers/{name}"}

    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            header_params = {
                p["name"] for p in operation.get("parameters", []) if p["in"] == "header"
            }
            creates = "Idempotency-Key" in header_params
            for status_code, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = ref("X-Request-ID")
                if status_code in ("429", "503") or (creates and status_code == "409"):
                    headers["Retry-After"] = ref("Retry-After")
                if creates and status_code in ("201", "422"):
                    headers["Idempotent-Replayed"] = ref("Idempotent-Replayed")
                if creates and status_code == "201":
                    headers["Preference-Applied"] = ref("Preference-Applied")


def _request_bodies_refuse_unknown_fields(result: dict[str, Any]) -> None:
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False


def _webhooks(result: dict[str, Any]) -> None:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    mapping: dict[str, str] = {}
    webhooks: dict[str, Any] = {}
    for kind, (data_name, suffixes, summary) in WEBHOOK_KINDS.items():
        event_name = "".join(part.capitalize() for part in kind.split("_")) + "Event"
        types = [f"{kind}.{suffix}" for suffix in suffixes]
        if data_name in schemas:
            data: dict[str, Any] = {"$ref": f"#/components/schemas/{data_name}"}
        else:
            data = {
                "type": "object",
                "additionalProperties": {},
                "description": f"The {kind.replace('_', ' ')} as the API shows it.",
            }
        schemas[f"{event_name}Type"] = {"type": "string", "enum": types}
        schemas[event_name] = {
            "type": "object",
            "description": f"{summary} `data` is the object as the API shows it then.",
            "properties": {
                "id": {
                    "type": "string",
                    "pattern": "^evt_[0-9a-f]+$",
                    "description": "The event's id; the `webhook-id` header carries it too.",
                },
                "type": {"$ref": f"#/components/schemas/{event_name}Type"},
                "created_at": {"type": "string", "format": "date-time"},
                "data": data,
            },
            "required": ["id", "type", "created_at", "data"],
        }
        for event_type in types:
            mapping[event_type] = f"#/components/schemas/{event_name}"
            webhooks[event_type] = {
                "post": {
                    "summary": f"`{event_type}`: {summary}",
                    "description": WEBHOOKS_DESCRIPTION,
                    "tags": ["Webhooks"],
                    "parameters": [
                        {
                            "in": "header",
                            "name": name,
                            "required": True,
                            "description": text,
                            "schema": {"type": "string"},
                        }
                        for name, text in WEBHOOK_HEADERS
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{event_name}"}
                            }
                        },
                    },
                    "responses": {"2XX": {"description": "Received; any other answer is retried."}},
                }
            }
    schemas["WebhookEvent"] = {
        "description": "Any merchant webhook event, told apart by `type`.",
        "oneOf": [{"$ref": target} for target in dict.fromkeys(mapping.values())],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }
    # OpenAPI 3.0 has no `webhooks` key (3.1 has): an extension, which validators and client
    # generators accept and skip, with the event components above for the bodies.
    result["x-webhooks"] = webhooks


def merchant_document(
    result: dict[str, Any], generator: Any, request: Any, public: Any
) -> dict[str, Any]:
    """drf-spectacular post-processing hook: see the module's docstring."""
    result = _nullable_references(result)
    _one_enum_per_concept(result)
    _request_bodies_refuse_unknown_fields(result)
    _response_headers(result)
    _webhooks(result)
    return result
