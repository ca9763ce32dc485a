"""Credentials (reference sections 2-3): subscription keys, the token endpoint, bearer
tokens and the target environment, checked the way MTN's gateway checks them."""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any

from .config import PRODUCTS
from .state import ApiUser, IssuedToken
from .wire import APIM_INVALID_KEY, APIM_MISSING_KEY, Reply, apim, bad_request, error

if TYPE_CHECKING:
    from .app import Sandbox


def product_of_key(sim: Sandbox, key: str | None) -> str | None:
    if not key:
        return None
    for product in PRODUCTS:
        if hmac.compare_digest(key, sim.config.credentials(product).subscription_key):
            return product
    return None


def subscription_key(headers: Any, query: dict[str, list[str]]) -> str | None:
    """The key from the ``Ocp-Apim-Subscription-Key`` header or, as Azure APIM also takes it,
    the ``subscription-key`` query parameter."""
    key = headers.get("Ocp-Apim-Subscription-Key")
    if key:
        return str(key)
    values = query.get("subscription-key") or []
    return values[0] if values else None


def check_subscription_key(
    sim: Sandbox, headers: Any, product: str | None, query: dict[str, list[str]] | None = None
) -> Reply | None:
    key = subscription_key(headers, query or {})
    if not key:
        return apim(401, APIM_MISSING_KEY)
    owner = product_of_key(sim, key)
    # A key of one product is refused on another's paths (section 1.1).
    if owner is None or (product is not None and owner != product):
        return apim(401, APIM_INVALID_KEY)
    return None


def describe_authorization(value: str | None) -> str | None:
    """An Authorization header as it may be logged: its scheme, and a Basic's API user."""
    if not value:
        return None
    scheme, _, credentials = value.partition(" ")
    if scheme == "Basic":
        try:
            api_user = base64.b64decode(credentials.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return "Basic"
        return f"Basic {api_user.split(':', 1)[0]}"
    return scheme


def issue_token(sim: Sandbox, product: str, headers: Any, body: bytes = b"") -> Reply:
    """POST /{product}/token/ with Basic auth; a bad API user or key is ``login_failed``.

    The token endpoint takes no body: MTN lists "a body in an API that does not take one,
    e.g. /token" among its 400s.
    """
    if body.strip():
        return bad_request("This API does not take a request body.")
    login_failed = Reply(500, {"error": "login_failed"})
    auth = headers.get("Authorization") or ""
    if not auth.startswith("Basic "):
        return login_failed
    try:
        decoded = base64.b64decode(auth[len("Basic ") :].strip(), validate=True).decode()
        api_user, api_key = decoded.split(":", 1)
    except (ValueError, UnicodeDecodeError):
        return login_failed
    state = sim.state
    with state.lock:
        user = state.users.get(api_user.lower()) or state.users.get(api_user)
        if user is None or not any(hmac.compare_digest(api_key, k) for k in user.api_keys):
            return login_failed
        lifetime = state.faults.token_lifetime_seconds
        if lifetime is None:
            lifetime = float(sim.config.token_expires_in)
        token = secrets.token_urlsafe(32)
        state.tokens[token] = IssuedToken(product, user.api_user, time.time() + lifetime)
        state.tokens_issued[product] += 1
    return Reply(
        200,
        {
            "access_token": token,
            "token_type": "access_token",
            "expires_in": sim.config.token_expires_in,
        },
    )


def authorize(sim: Sandbox, product: str, headers: Any) -> tuple[ApiUser | None, Reply | None]:
    """The API user behind a product call's bearer token, or the reply refusing it.

    A token is not tied to the product whose path it is used on: MTN's own sandbox notebook
    (2024) paid a disbursement transfer with a token from ``/collection/token/``. What MTN
    does refuse is a sandbox user working a product it was not created for (section 2.4):
    its token is issued, but every call with it is 500 NOT_ALLOWED_TARGET_ENVIRONMENT.
    """
    # MTN's body for a bad or expired bearer is not documented (section 12); this one is the
    # simulator's. What matters is that it has no ``statusCode``: MTN-Group's PHP SDK mints a
    # new token only for a 401 without one (a statusCode 401 is APIM's subscription-key error).
    invalid = Reply(
        401, {"error": "invalid_token", "message": "Access token is invalid or expired."}
    )
    auth = headers.get("Authorization") or ""
    if not auth.startswith("Bearer "):
        return None, invalid
    state = sim.state
    with state.lock:
        token = state.tokens.get(auth[len("Bearer ") :].strip())
        if token is None or time.time() >= token.expires_at:
            return None, invalid
        user = state.users.get(token.api_user)
    if user is None:
        return None, invalid
    if token.product not in user.products:
        return None, error(500, "NOT_ALLOWED_TARGET_ENVIRONMENT")
    return user, None


def check_target_environment(sim: Sandbox, headers: Any) -> Reply | None:
    env = headers.get("X-Target-Environment")
    if env is None:
        return error(400, "BAD_REQUEST", "X-Target-Environment header is required.")
    if env != sim.config.target_environment:
        return error(500, "NOT_ALLOWED_TARGET_ENVIRONMENT")
    return None
