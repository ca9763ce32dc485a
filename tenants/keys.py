"""API key and webhook secret generation and hashing."""

from __future__ import annotations

import base64
import hashlib
import secrets

API_KEY_PREFIX_LENGTH = 12
_API_KEY_MARK = "mgw_"


def generate_api_key() -> str:
    # 4-character mark (spotted by secret scanners) + 43 url-safe characters (256 bits).
    return _API_KEY_MARK + secrets.token_urlsafe(32)


def hash_api_key(raw_key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; a slow KDF would only cost CPU.
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def api_key_prefix(raw_key: str) -> str:
    return raw_key[:API_KEY_PREFIX_LENGTH]


def generate_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
