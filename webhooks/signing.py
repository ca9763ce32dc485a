"""Signatures: inbound ``X-Signature-256`` (HMAC-SHA256 hex) and outbound Standard Webhooks."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from standardwebhooks import Webhook

_HEX_DIGITS = frozenset("0123456789abcdef")


def inbound_signature(secret: str, raw_body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def inbound_signature_valid(*, secret: str, raw_body: bytes, header: str | None) -> bool:
    """Check ``X-Signature-256`` over the exact raw bytes, in constant time.

    Accepts the bare hex digest or ``sha256=<hex>`` (GitHub's form), any case.
    """
    if not header or not secret:
        return False
    candidate = header.strip()
    if candidate[:7].lower() == "sha256=":
        candidate = candidate[7:]
    candidate = candidate.lower()
    if len(candidate) != 64 or not set(candidate) <= _HEX_DIGITS:
        return False
    return hmac.compare_digest(candidate, inbound_signature(secret, raw_body))


def outbound_signature(*, secrets: list[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` header: one ``v1,<base64>`` per active secret, space-separated.

    Signing with both secrets during a rotation lets a merchant switch at its own pace.
    """
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets)
