"""A strict JSON parser for the API.

It differs from DRF's stock parser in three ways the contract needs:
- with ``JsonWhateverTheContentType``, any Content-Type is parsed as JSON, so a body that
  is not JSON is ``malformed_json`` (never a 415 that leaves the merchant guessing);
- a JSON number keeps its literal text (``JsonNumber.text``), so money rules can reject
  exponents and count decimals exactly as the merchant wrote them;
- NaN, Infinity, over-deep nesting and oversized bodies are refused with a clear error
  instead of becoming a 5xx later.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser

from gateway.errors import MalformedJson, PayloadTooLarge


class JsonFloat(float):
    """A JSON number with a fraction or exponent, carrying the text it was written as."""

    text: str

    def __new__(cls, text: str) -> JsonFloat:
        value = super().__new__(cls, text)
        value.text = text
        return value


class JsonInt(int):
    """A JSON integer carrying the text it was written as."""

    text: str

    def __new__(cls, text: str) -> JsonInt:
        value = super().__new__(cls, text)
        value.text = text
        return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _parse_int(text: str) -> JsonInt:
    if len(text) > 100:
        raise ValueError("number too long")
    return JsonInt(text)


def _parse_float(text: str) -> JsonFloat:
    if len(text) > 100:
        raise ValueError("number too long")
    return JsonFloat(text)


def loads_strict(raw: bytes) -> Any:
    """Parse JSON bytes; raise ``MalformedJson`` for anything that is not plain JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson("The request body is not valid UTF-8 JSON.") from exc
    try:
        data = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except RecursionError as exc:
        raise MalformedJson("The JSON body is nested too deeply.") from exc
    except ValueError as exc:
        raise MalformedJson(f"The request body is not valid JSON: {exc}") from exc
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        # "\ud800" parses to a str that no database or UTF-8 response can hold: a 500 later.
        raise MalformedJson("The JSON body holds a lone UTF-16 surrogate escape (\\uD800-\\uDFFF).")
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:
        return False
    return False


def read_limited(stream: Any, limit: int | None = None) -> bytes:
    """Read at most ``limit`` bytes of a request body, refusing a larger one."""
    limit = limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    return raw


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = read_limited(stream)
        if not raw.strip():
            return {}
        return loads_strict(raw)


class JsonWhateverTheContentType(DefaultContentNegotiation):
    """Parse every body as JSON, whatever Content-Type the client sent; always answer JSON.

    A merchant's ``curl -d`` sends form encoding by default; answering that with a 415 helps
    nobody, and the contract wants a body that is not JSON to be ``malformed_json``.
    """

    def select_parser(self, request: Any, parsers: list[BaseParser]) -> BaseParser | None:
        return super().select_parser(request, parsers) or (parsers[0] if parsers else None)

    def select_renderer(self, request: Any, renderers: list[Any], format_suffix: Any = None) -> Any:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            # An Accept the view cannot meet (text/html on the JSON API) gets JSON, not a 406.
            return renderers[0], renderers[0].media_type
