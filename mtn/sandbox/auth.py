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
from .wire import APIM_INVALID_KEY, APIM_MISSING_KEY, Reply, apim, error

if TYPE_CHECKING:
    from .app import Sandbox


def product_of_key(sim: Sandbox, key: str | None) -> str | None:
    if not key:
        return None
    for product in PRODUCTS:
        if hmac.compare_digest(key, sim.config.credentials(product).subscription_key):
            return product
    return None


def check_subscription_key(sim: Sandbox, headers: Any, product: str | None) -> Reply | None:
    key = headers.get("Ocp-Apim-Subscription-Key")
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


def issue_token(sim: Sandbox, product: str, headers: Any) -> Reply:
    """POST /{product}/token/ with Basic auth; a bad API user or key is ``login_failed``."""
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
    """The API user behind a product call's bearer token, or the reply refusing it."""
    # Real MTN's body for a bad/expired bearer is undocumented (section 12); what matters
    # is a 401 *without* statusCode, which clients answer by minting a new token.
    invalid = Reply(
        401, {"error": "invalid_token", "message": "Access token is invalid or expired."}
    )
    auth = headers.get("Authorization") or ""
    if not auth.startswith("Bearer "):
        return None, invalid
    state = sim.state
    with state.lock:
        token = state.tokens.get(auth[len("Bearer ") :].strip())
        if token is None or token.product != product or time.time() >= token.expires_at:
            return None, invalid
        user = state.users.get(token.api_user)
    if user is None:
        return None, invalid
    if product not in user.products:
        # A sandbox user made with another product's key gets tokens but every call
        # fails like this (section 2.4).
        return None, error(500, "NOT_ALLOWED_TARGET_ENVIRONMENT")
    return user, None


def check_target_environment(sim: Sandbox, headers: Any) -> Reply | None:
    env = headers.get("X-Target-Environment")
    if env is None:
        return error(400, "BAD_REQUEST", "X-Target-Environment header is required.")
    if env != sim.config.target_environment:
        return error(500, "NOT_ALLOWED_TARGET_ENVIRONMENT")
    return None
