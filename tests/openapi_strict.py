"""Check real answers against the served OpenAPI document, read strictly.

``openapi-schema-validator``'s strict OpenAPI 3.0.3 validator: ``nullable`` counts only beside
a ``type``, formats (``uuid``, ``date-time``) are checked, and a body that a response does
not declare (status code, content type) is a failure, as is a missing ``X-Request-ID``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.test import Client
from openapi_schema_validator import OAS30StrictValidator, oas30_format_checker


def served_document() -> dict[str, Any]:
    response = Client().get("/api/schema/")
    assert response.status_code == 200, response.status_code
    document = yaml.safe_load(response.content)
    assert isinstance(document, dict)
    return document


def check_instance(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` matches ``schema``, whose
    ``$ref``s point into ``document``."""
    rooted = {**schema, "components": document.get("components", {})}
    OAS30StrictValidator(rooted, format_checker=oas30_format_checker).validate(instance)


def check_component(document: dict[str, Any], name: str, instance: Any) -> None:
    check_instance(document, {"$ref": f"#/components/schemas/{name}"}, instance)


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$"
    )


def operation_for(document: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """(path template, operation) of the document that ``method path`` is."""
    paths = document["paths"]
    if path in paths and method.lower() in paths[path]:
        return path, paths[path][method.lower()]
    for template, operations in paths.items():
        if method.lower() in operations and _template_pattern(template).match(path):
            return template, operations[method.lower()]
    raise AssertionError(f"{method} {path} is not in the document")


@dataclass
class ResponseChecker:
    """Validates responses and remembers which operations answered 2xx, which errors."""

    document: dict[str, Any]
    seen: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def check(self, method: str, path: str, response: Any) -> Any:
        """Validate ``response`` (a Django test response) to ``method path``; return it."""
        template, operation = operation_for(self.document, method, path.split("?", 1)[0])
        status = str(response.status_code)
        responses = operation["responses"]
        declared = responses.get(status) or responses.get(f"{status[0]}XX")
        assert declared is not None, f"{method} {template}: {status} is not documented"
        headers = {name.lower() for name in declared.get("headers", {})}
        assert "x-request-id" in headers, f"{method} {template} {status}: X-Request-ID"
        assert response.has_header("X-Request-ID"), f"{method} {template} {status}"
        for name in headers & {"retry-after", "idempotent-replayed", "preference-applied"}:
            if response.has_header(name):
                schema = declared["headers"][_original(declared["headers"], name)]
                check_instance(self.document, _header_schema(self.document, schema), response[name])
        content_type = response["Content-Type"].split(";")[0].strip()
        content = declared.get("content", {})
        assert content_type in content, (
            f"{method} {template} {status}: {content_type} not in {sorted(content)}"
        )
        raw = b"".join(response.streaming_content) if response.streaming else response.content
        body: Any = json.loads(raw) if content_type == "application/json" else raw.decode()
        check_instance(self.document, content[content_type]["schema"], body)
        self.seen.setdefault((method.upper(), template), set()).add(status)
        if response.streaming:
            response.streaming_content = iter([raw])
        return response


def _original(headers: dict[str, Any], lower: str) -> str:
    return next(name for name in headers if name.lower() == lower)


def _header_schema(document: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in header:
        header = document["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]
    schema = dict(header["schema"])
    if schema.get("type") == "integer":
        # A header is text: check the integer it spells.
        return {"type": "string", "pattern": "^[0-9]+$"}
    return schema
