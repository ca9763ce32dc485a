"""redact()'s shortcut: text it leaves alone is text that no redaction pattern would change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import logging as gateway_logging
from gateway.logging import REDACTED, mask_msisdn, redact

# Pieces that the patterns react to, in several cases, among harmless ones.
PIECES = [
    "mgw_",
    "MGW_",
    "whsec_",
    "Bearer ",
    "basic ",
    "Authorization",
    "API-KEY",
    "apiKey",
    "api_key",
    "Subscription_Key",
    "secret",
    "PassWord",
    "passwd",
    "Token",
    "/webhooks/mtn/",
    "/webhooks/mtn/health",
    "=",
    "=v4lue",
    ": ",
    ": 'abc'",
    "'",
    '"',
    " ",
    "-",
    ".",
    "+",
    "256772123456",
    "46733123450",
    "12345678",
    "5f0c1234-1234-4123-8123-123456789012",
    "abcdefghijklmnopqrstuvwxyz012345678",
    "GET /api/v1/payments",
    "ok",
]


def redact_without_shortcut(text: str) -> str:
    for secret in gateway_logging._configured_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in gateway_logging._SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return mask_msisdn(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_the_shortcut_never_changes_what_is_redacted(text):
    assert redact(text) == redact_without_shortcut(text)


@pytest.mark.parametrize("word", [p.strip() for p in PIECES[:15]])
@pytest.mark.parametrize("shape", ["{w}=v4lue", "x {w}: 'abc'", "{w}abcdefghijkl", "a{w}=b"])
def test_each_trigger_in_each_shape_is_redacted_as_without_the_shortcut(word, shape):
    text = shape.format(w=word)

    assert redact(text) == redact_without_shortcut(text)


def test_an_access_line_path_is_left_as_it_is():
    path = "/api/v1/payments/5f0c1d2e-a1b1-4c22-8d33-e4f4a5b5c6d6"

    assert redact(path) == path


def test_a_changed_setting_is_redacted_from_then_on(settings):
    assert redact("key f1e2d3c4b5a69788a1b2c3d4e5f60718") == "key f1e2d3c4b5a69788a1b2c3d4e5f60718"

    settings.MTN_COLLECTION_API_KEY = "f1e2d3c4b5a69788a1b2c3d4e5f60718"

    assert redact("key f1e2d3c4b5a69788a1b2c3d4e5f60718") == f"key {REDACTED}"
