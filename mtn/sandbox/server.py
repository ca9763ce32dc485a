"""A local MTN MoMo sandbox that speaks MTN's HTTP contract (reference sections 2-8, 11).

Standard library HTTP server plus ``requests`` for callbacks. It accepts exactly the ``MTN_*``
credentials from Django settings by default, answers like MTN (202 empty bodies, 409
duplicates, 500 ``{code, message}`` configuration errors, APIM ``{statusCode, message}`` 401s,
``{"error": "login_failed"}`` on the token endpoint) and can inject the faults a gateway must
survive: 5xx, 429, timeouts, lost responses, lost/duplicate/late/out-of-order callbacks.

Unlike real MTN, callbacks are signed (``X-Signature-256``) so the gateway's signed door can
be exercised end to end.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import copy
import dataclasses
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from .scenarios import (
    FAILED,
    PENDING,
    REASON_MESSAGES,
    SUCCESSFUL,
    account_holder_answer,
    transaction_outcome,
)

logger = logging.getLogger(__name__)

PRODUCTS = ("collection", "disbursement")

# Production target environments and the only currency each accepts (section 1.3).
MARKET_CURRENCIES = {
    "sandbox": "EUR",
    "mtnuganda": "UGX",
    "mtnghana": "GHS",
    "mtnzambia": "ZMW",
    "mtncameroon": "XAF",
    "mtnivorycoast": "XOF",
    "mtnbenin": "XOF",
    "mtncongo": "XAF",
    "mtnrwanda": "RWF",
    "mtnswaziland": "SZL",
    "mtnsouthafrica": "ZAR",
    "mtnliberia": "LRD",
    "mtnguineaconakry": "GNF",
}

APIM_INVALID_KEY = (
    "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription."
)
APIM_MISSING_KEY = (
    "Access denied due to missing subscription key. "
    "Make sure to include subscription key when making requests to an API."
)

_AMOUNT = re.compile(r"^\d+(\.\d+)?$")
_MAX_TEXT = 160
_FORBIDDEN_TEXT = re.compile(r"[&'\"<>\\]")


def _setting(name: str, default: Any) -> Any:
    """A Django setting when Django is configured, else the simulator's built-in default."""
    try:
        from django.conf import settings

        if settings.configured:
            return getattr(settings, name, default)
    except Exception:  # noqa: BLE001,S110 - Django missing or misconfigured: use the default
        pass
    return default


@dataclass(frozen=True)
class ProductCredentials:
    subscription_key: str
    api_user: str
    api_key: str


def _credentials_from_settings(product: str) -> ProductCredentials:
    upper = product.upper()
    defaults = {
        "collection": (
            "simulator-collection-subscription-key",
            "1f2a3b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
            "simulator-collection-api-key",
        ),
        "disbursement": (
            "simulator-disbursement-subscription-key",
            "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d",
            "simulator-disbursement-api-key",
        ),
    }[product]
    return ProductCredentials(
        subscription_key=_setting(f"MTN_{upper}_SUBSCRIPTION_KEY", defaults[0]),
        api_user=_setting(f"MTN_{upper}_API_USER", defaults[1]),
        api_key=_setting(f"MTN_{upper}_API_KEY", defaults[2]),
    )


@dataclass
class Faults:
    """Injected misbehaviour. Rates are probabilities 0..1; ``*_next`` are exact counters."""

    down: bool = False  # every MTN call answers 503
    post_error_rate: float = 0.0  # requesttopay/transfer: 500 INTERNAL_PROCESSING_ERROR or 503
    status_error_rate: float = 0.0  # status GETs: 500 INTERNAL_PROCESSING_ERROR or 503
    rate_limit_rate: float = 0.0  # any MTN call: 429 with Retry-After
    retry_after_seconds: int = 1
    timeout_rate: float = 0.0  # POST/GET: sleep timeout_seconds, create nothing, then 504
    timeout_seconds: float = 15.0
    lost_response_rate: float = 0.0  # POST: create the transaction, then never answer
    lost_response_mode: str = "drop"  # "drop" the connection, or "sleep" timeout_seconds first
    lost_callback_rate: float = 0.0
    duplicate_callback_rate: float = 0.0
    out_of_order_rate: float = 0.0  # after the final callback, a stale PENDING one arrives
    callback_delay_seconds: float = 0.0
    fail_next_posts: int = 0  # the next N requesttopay/transfer POSTs answer 503
    lose_next_posts: int = 0  # the next N POSTs are created but their answer is lost
    rate_limit_next: int = 0  # the next N MTN calls answer 429
    timeout_next: int = 0  # the next N POST/status calls time out (nothing created)
    token_lifetime_seconds: float | None = None  # tokens die this early (still say 3600)

    def update(self, values: dict[str, Any]) -> None:
        names = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
        for key, value in values.items():
            current = getattr(self, key)
            if key == "lost_response_mode":
                if value not in ("drop", "sleep"):
                    raise ValueError("lost_response_mode must be 'drop' or 'sleep'")
            elif key == "token_lifetime_seconds":
                value = None if value is None else float(value)
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
            elif isinstance(current, int):
                value = int(value)
                if value < 0:
                    raise ValueError(f"{key} must not be negative")
            elif isinstance(current, float):
                value = float(value)
                if key.endswith("_rate") and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{key} must be between 0 and 1")
                if value < 0:
                    raise ValueError(f"{key} must not be negative")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SandboxConfig:
    """How the simulator behaves. Defaults mirror the MTN sandbox and the gateway's settings."""

    target_environment: str = field(
        default_factory=lambda: _setting("MTN_TARGET_ENVIRONMENT", "sandbox")
    )
    collection: ProductCredentials = field(
        default_factory=lambda: _credentials_from_settings("collection")
    )
    disbursement: ProductCredentials = field(
        default_factory=lambda: _credentials_from_settings("disbursement")
    )
    # providerCallbackHost of the configured API users; None = accept any callback host.
    provider_callback_host: str | None = None
    delay_seconds: float = 25.0  # …454: PENDING, then SUCCESSFUL after this long
    callback_method: str = "PUT"  # MTN-Group's Java SDK README: MoMo pushes with PUT
    reason_as_object: bool = False  # the spec's {code, message} instead of the live string
    signed_callback_url: str | None = None  # also send every final callback here
    webhook_secret: str = field(
        default_factory=lambda: _setting("MTN_WEBHOOK_SECRET", "dev-mtn-webhook-secret")
    )
    token_expires_in: int = 3600
    callback_timeout: float = 2.0  # MTN waits ~2 s for the callback answer (section 8.1)
    balance: str = "1000000"
    seed: int | None = None
    faults: Faults = field(default_factory=Faults)

    def credentials(self, product: str) -> ProductCredentials:
        return self.collection if product == "collection" else self.disbursement

    @property
    def currency(self) -> str | None:
        return MARKET_CURRENCIES.get(self.target_environment)


@dataclass
class _User:
    api_user: str
    products: set[str]
    api_keys: set[str]
    callback_host: str | None
    provisioned: bool = False


@dataclass
class _Token:
    product: str
    api_user: str
    expires_at: float


@dataclass
class SimTransaction:
    reference_id: str
    product: str
    kind: str  # "requesttopay" or "transfer"
    api_user: str
    request: dict[str, Any]
    party_key: str  # "payer" or "payee"
    party_id: str
    status: str
    reason: str | None
    created_at: float
    resolve_at: float | None = None
    callback_url: str | None = None
    financial_transaction_id: str | None = None
    callbacks_dispatched: bool = False
    post_count: int = 1
    conflict_count: int = 0
    status_reads: int = 0

    @property
    def is_final(self) -> bool:
        return self.status in (SUCCESSFUL, FAILED)

    def status_json(self, *, reason_as_object: bool, status: str | None = None) -> dict[str, Any]:
        """The status endpoint / callback body: no reference id, like MTN's (section 8.1)."""
        status = status or self.status
        body: dict[str, Any] = {
            "amount": _normalise_amount(self.request["amount"]),
            "currency": self.request["currency"],
        }
        if status in (SUCCESSFUL, FAILED) and self.financial_transaction_id:
            body["financialTransactionId"] = self.financial_transaction_id
        body["externalId"] = self.request["externalId"]
        body[self.party_key] = dict(self.request[self.party_key])
        for key in ("payerMessage", "payeeNote"):
            if key in self.request:
                body[key] = self.request[key]
        body["status"] = status
        if status == FAILED and self.reason:
            body["reason"] = (
                {"code": self.reason, "message": REASON_MESSAGES.get(self.reason, self.reason)}
                if reason_as_object
                else self.reason
            )
        return body

    def inspect(self) -> dict[str, Any]:
        return {
            "reference_id": self.reference_id,
            "product": self.product,
            "kind": self.kind,
            "api_user": self.api_user,
            "status": self.status,
            "reason": self.reason,
            "amount": self.request["amount"],
            "currency": self.request["currency"],
            "external_id": self.request["externalId"],
            "party_id": self.party_id,
            "callback_url": self.callback_url,
            "financial_transaction_id": self.financial_transaction_id,
            "post_count": self.post_count,
            "conflict_count": self.conflict_count,
            "status_reads": self.status_reads,
            "created_at": self.created_at,
            "request": copy.deepcopy(self.request),
        }


def _normalise_amount(amount: str) -> str:
    # MTN echoes amounts normalised: "12.50" comes back as "12.5" (section 4.1).
    try:
        value = Decimal(amount).normalize()
    except InvalidOperation:
        return amount
    return format(value, "f")


class SandboxState:
    """Everything the simulator knows; thread-safe; read by tests for assertions."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self._initial_faults = copy.deepcopy(config.faults)
        self.faults = copy.deepcopy(config.faults)
        self.rng = random.Random(config.seed)  # noqa: S311 - fault injection, not security
        self.transactions: dict[str, SimTransaction] = {}
        self.tokens: dict[str, _Token] = {}
        self.users: dict[str, _User] = {}
        # Bounded so a long-running `manage.py mtn_sandbox` does not grow without end.
        self.callbacks: collections.deque[dict[str, Any]] = collections.deque(maxlen=10_000)
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=10_000)
        self.tokens_issued: dict[str, int] = {p: 0 for p in PRODUCTS}
        self._seed_users()

    def _seed_users(self) -> None:
        self.users.clear()
        for product in PRODUCTS:
            creds = self.config.credentials(product)
            user = self.users.get(creds.api_user)
            if user is None:
                user = _User(creds.api_user, set(), set(), self.config.provider_callback_host)
                self.users[creds.api_user] = user
            user.products.add(product)
            user.api_keys.add(creds.api_key)

    def reset(self) -> None:
        with self.lock:
            self.transactions.clear()
            self.tokens.clear()
            self.callbacks.clear()
            self.requests.clear()
            self.tokens_issued = {p: 0 for p in PRODUCTS}
            self.faults = copy.deepcopy(self._initial_faults)
            self.rng = random.Random(self.config.seed)  # noqa: S311
            self._seed_users()

    # --- faults -----------------------------------------------------------------------------

    def set_faults(self, **values: Any) -> dict[str, Any]:
        with self.lock:
            seed = values.pop("seed", None)
            if seed is not None:
                self.rng = random.Random(seed)  # noqa: S311
            trial = copy.deepcopy(self.faults)
            trial.update(values)  # validates everything before changing anything
            self.faults = trial
            return self.faults.as_dict()

    def chance(self, rate: float) -> bool:
        with self.lock:
            return rate > 0 and self.rng.random() < rate

    def take(self, counter: str) -> bool:
        """Consume one unit of a ``*_next`` counter; True if one was available."""
        with self.lock:
            left = getattr(self.faults, counter)
            if left > 0:
                setattr(self.faults, counter, left - 1)
                return True
            return False

    # --- inspection -------------------------------------------------------------------------

    def transaction(self, reference_id: str | uuid.UUID) -> dict[str, Any] | None:
        with self.lock:
            tx = self.transactions.get(str(reference_id).lower())
            if tx is None:
                return None
            self.refresh(tx)
            return tx.inspect()

    def all_transactions(self) -> list[dict[str, Any]]:
        with self.lock:
            for tx in self.transactions.values():
                self.refresh(tx)
            return [tx.inspect() for tx in self.transactions.values()]

    def post_count(self, reference_id: str | uuid.UUID) -> int:
        """How many POSTs created this reference (0 or 1): 'reached MTN exactly once'."""
        tx = self.transaction(reference_id)
        return tx["post_count"] if tx else 0

    def conflict_count(self, reference_id: str | uuid.UUID) -> int:
        """How many POSTs with this reference were answered 409."""
        tx = self.transaction(reference_id)
        return tx["conflict_count"] if tx else 0

    def request_count(self, method: str | None = None, path_prefix: str = "") -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r["method"] == method) and r["path"].startswith(path_prefix)
            )

    def callback_log(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self.callbacks]

    def expire_tokens(self) -> int:
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = 0.0
            return len(self.tokens)

    # --- transaction lifecycle --------------------------------------------------------------

    def refresh(self, tx: SimTransaction) -> None:
        """Resolve a delayed (…454) transaction whose time has come."""
        if tx.status == PENDING and tx.resolve_at is not None and time.time() >= tx.resolve_at:
            tx.status = SUCCESSFUL
            tx.financial_transaction_id = tx.financial_transaction_id or _financial_id()


def _financial_id() -> str:
    return str(secrets.randbelow(9 * 10**8) + 10**8)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops connections in a burst of callbacks.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)


class _Drop(Exception):  # noqa: N818 - control flow, not an error
    """Close the connection without answering (a lost response)."""


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str | None = None) -> _Reply:
    return _Reply(status, {"code": code, "message": message or REASON_MESSAGES.get(code, code)})


def _apim(status: int, message: str) -> _Reply:
    return _Reply(status, {"statusCode": status, "message": message})


class Sandbox:
    """The simulator's behaviour, independent of the socket plumbing."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.state = SandboxState(config)
        self.stopping = threading.Event()
        self._timers: list[threading.Timer] = []

    # --- entry point ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> _Reply:
        path = unquote(urlsplit(raw_path).path)
        if path.startswith("/_simulator/"):
            return self._control(method, path, body)
        try:
            reply = self._route(method, path, headers, body)
        except _Drop:
            self._log_request(method, path, headers, None)  # answered nothing
            raise
        self._log_request(method, path, headers, reply.status)
        return reply

    def _log_request(self, method: str, path: str, headers: Any, status: int | None) -> None:
        with self.state.lock:
            self.state.requests.append(
                {
                    "method": method,
                    "path": path,
                    "status": status,
                    "reference_id": headers.get("X-Reference-Id"),
                    "at": time.time(),
                }
            )

    def _route(self, method: str, path: str, headers: Any, body: bytes) -> _Reply:
        faults = self.state.faults
        if faults.down:
            return _error(503, "SERVICE_UNAVAILABLE")
        parts = [p for p in path.split("/") if p != ""]
        trailing_slash = path.endswith("/")

        if parts[:2] == ["v1_0", "apiuser"]:
            return self._provisioning(method, parts[2:], headers, body)
        if not parts or parts[0] not in PRODUCTS:
            return _apim(404, "Resource not found")
        product = parts[0]

        key_reply = self._check_subscription_key(headers, product)
        if key_reply:
            return key_reply
        if self.state.take("rate_limit_next") or self.state.chance(faults.rate_limit_rate):
            seconds = max(int(faults.retry_after_seconds), 0)
            return _Reply(
                429,
                {
                    "statusCode": 429,
                    "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
                },
                {"Retry-After": str(seconds)},
            )

        rest = parts[1:]
        if rest == ["token"] and method == "POST":
            if not trailing_slash:
                return _apim(404, "Resource not found")  # the trailing slash matters (3.1)
            return self._token(product, headers)

        if len(rest) < 2 or rest[0] != "v1_0":
            return _apim(404, "Resource not found")
        user, auth_reply = self._authorize(product, headers)
        if auth_reply:
            return auth_reply
        env_reply = self._check_target_environment(headers)
        if env_reply:
            return env_reply

        kind = "requesttopay" if product == "collection" else "transfer"
        if rest[1:] == [kind] and method == "POST":
            return self._create(product, kind, user, headers, body)
        if rest[1] == kind and len(rest) == 3 and method == "GET":
            return self._status(product, kind, user, rest[2])
        if rest[1:3] == ["account", "balance"] and method == "GET" and len(rest) <= 4:
            currency = rest[3] if len(rest) == 4 else (self.config.currency or "EUR")
            return _Reply(200, {"availableBalance": self.config.balance, "currency": currency})
        if rest[1] == "accountholder" and len(rest) == 5 and method == "GET":
            return self._account_holder(rest[2], rest[3], rest[4])
        return _apim(404, "Resource not found")

    # --- checks -----------------------------------------------------------------------------

    def _product_of_key(self, key: str | None) -> str | None:
        if not key:
            return None
        for product in PRODUCTS:
            if hmac.compare_digest(key, self.config.credentials(product).subscription_key):
                return product
        return None

    def _check_subscription_key(self, headers: Any, product: str | None) -> _Reply | None:
        key = headers.get("Ocp-Apim-Subscription-Key")
        if not key:
            return _apim(401, APIM_MISSING_KEY)
        owner = self._product_of_key(key)
        # A key of one product is refused on another's paths (section 1.1).
        if owner is None or (product is not None and owner != product):
            return _apim(401, APIM_INVALID_KEY)
        return None

    def _authorize(self, product: str, headers: Any) -> tuple[_User | None, _Reply | None]:
        # Real MTN's body for a bad/expired bearer is undocumented (section 12); what matters
        # is a 401 *without* statusCode, which clients answer by minting a new token.
        invalid = _Reply(
            401, {"error": "invalid_token", "message": "Access token is invalid or expired."}
        )
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return None, invalid
        with self.state.lock:
            token = self.state.tokens.get(auth[len("Bearer ") :].strip())
            if token is None or token.product != product or time.time() >= token.expires_at:
                return None, invalid
            user = self.state.users.get(token.api_user)
        if user is None:
            return None, invalid
        if product not in user.products:
            # A sandbox user made with another product's key gets tokens but every call
            # fails like this (section 2.4).
            return None, _error(500, "NOT_ALLOWED_TARGET_ENVIRONMENT")
        return user, None

    def _check_target_environment(self, headers: Any) -> _Reply | None:
        env = headers.get("X-Target-Environment")
        if env is None:
            return _error(400, "BAD_REQUEST", "X-Target-Environment header is required.")
        if env != self.config.target_environment:
            return _error(500, "NOT_ALLOWED_TARGET_ENVIRONMENT")
        return None

    # --- provisioning (section 2) -----------------------------------------------------------

    def _provisioning(self, method: str, rest: list[str], headers: Any, body: bytes) -> _Reply:
        key_reply = self._check_subscription_key(headers, None)
        if key_reply:
            return key_reply
        product = self._product_of_key(headers.get("Ocp-Apim-Subscription-Key"))
        if not rest and method == "POST":
            ref = headers.get("X-Reference-Id") or ""
            if not _is_uuid4(ref):
                return _error(400, "BAD_REQUEST", "X-Reference-Id must be a UUID version 4.")
            data = _json_or_none(body)
            host = data.get("providerCallbackHost") if isinstance(data, dict) else None
            if not isinstance(host, str) or not host or "/" in host or ":" in host:
                return _error(400, "BAD_REQUEST", "providerCallbackHost must be a host name.")
            ref = ref.lower()
            with self.state.lock:
                if ref in self.state.users:
                    return _error(
                        409, "RESOURCE_ALREADY_EXIST", "Conflict, duplicated reference id."
                    )
                self.state.users[ref] = _User(ref, {product}, set(), host, provisioned=True)
            return _Reply(201)
        if len(rest) == 2 and rest[1] == "apikey" and method == "POST":
            with self.state.lock:
                user = self.state.users.get(rest[0].lower())
                if user is None:
                    return _error(404, "RESOURCE_NOT_FOUND")
                api_key = secrets.token_hex(16)
                if user.provisioned:
                    user.api_keys = {api_key}
                else:
                    user.api_keys.add(api_key)
            return _Reply(201, {"apiKey": api_key})
        if len(rest) == 1 and method == "GET":
            with self.state.lock:
                user = self.state.users.get(rest[0].lower())
            if user is None:
                return _error(404, "RESOURCE_NOT_FOUND")
            return _Reply(
                200,
                {
                    "providerCallbackHost": user.callback_host or "",
                    "targetEnvironment": self.config.target_environment,
                },
            )
        return _apim(404, "Resource not found")

    # --- tokens (section 3) -----------------------------------------------------------------

    def _token(self, product: str, headers: Any) -> _Reply:
        login_failed = _Reply(500, {"error": "login_failed"})
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Basic "):
            return login_failed
        try:
            decoded = base64.b64decode(auth[len("Basic ") :].strip(), validate=True).decode()
            api_user, api_key = decoded.split(":", 1)
        except (ValueError, UnicodeDecodeError):
            return login_failed
        with self.state.lock:
            user = self.state.users.get(api_user.lower()) or self.state.users.get(api_user)
            if user is None or not any(hmac.compare_digest(api_key, k) for k in user.api_keys):
                return login_failed
            lifetime = self.state.faults.token_lifetime_seconds
            if lifetime is None:
                lifetime = float(self.config.token_expires_in)
            token = secrets.token_urlsafe(32)
            self.state.tokens[token] = _Token(product, user.api_user, time.time() + lifetime)
            self.state.tokens_issued[product] += 1
        return _Reply(
            200,
            {
                "access_token": token,
                "token_type": "access_token",
                "expires_in": self.config.token_expires_in,
            },
        )

    # --- transactions (sections 4, 5) -------------------------------------------------------

    def _sleep_then(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def _create(
        self, product: str, kind: str, user: _User | None, headers: Any, body: bytes
    ) -> _Reply:
        faults = self.state.faults
        if self.state.take("fail_next_posts"):
            return _error(503, "SERVICE_UNAVAILABLE")
        if self.state.chance(faults.post_error_rate):
            code = "INTERNAL_PROCESSING_ERROR" if self.state.chance(0.5) else "SERVICE_UNAVAILABLE"
            return _error(500 if code == "INTERNAL_PROCESSING_ERROR" else 503, code)
        if self.state.take("timeout_next") or self.state.chance(faults.timeout_rate):
            self._sleep_then(faults.timeout_seconds)
            return _apim(504, "Gateway Timeout")

        ref = headers.get("X-Reference-Id") or ""
        if not _is_uuid4(ref):
            return _error(400, "BAD_REQUEST", "X-Reference-Id must be a UUID version 4.")
        ref = ref.lower()
        callback_url = headers.get("X-Callback-Url")
        if callback_url is not None:
            callback_url = callback_url.strip()
            if not callback_url:
                return _error(400, "BAD_REQUEST", "X-Callback-Url must not be empty.")
            host = urlsplit(callback_url).hostname
            if not host:
                return _error(400, "BAD_REQUEST", "X-Callback-Url is not a URL.")
            expected = user.callback_host if user else None
            if expected and host.lower() != expected.lower():
                # The whole request fails and nothing is created (section 4.1).
                return _error(500, "INVALID_CALLBACK_URL_HOST")

        party_key = "payer" if kind == "requesttopay" else "payee"
        data = _json_or_none(body)
        problem = _validate_body(data, party_key)
        if problem:
            return _error(400, "BAD_REQUEST", problem)
        assert isinstance(data, dict)  # noqa: S101 - narrowed by _validate_body
        expected_currency = self.config.currency
        if expected_currency and data["currency"] != expected_currency:
            return _error(500, "INVALID_CURRENCY")

        party_id = data[party_key]["partyId"]
        outcome = transaction_outcome(kind, party_id)
        now = time.time()
        with self.state.lock:
            existing = self.state.transactions.get(ref)
            if existing is not None:
                existing.conflict_count += 1
                return _error(409, "RESOURCE_ALREADY_EXIST")
            tx = SimTransaction(
                reference_id=ref,
                product=product,
                kind=kind,
                api_user=user.api_user if user else "",
                request=data,
                party_key=party_key,
                party_id=party_id,
                status=outcome.status,
                reason=outcome.reason,
                created_at=now,
                callback_url=callback_url,
            )
            if tx.is_final:
                tx.financial_transaction_id = _financial_id()
            if outcome.resolves_later:
                tx.resolve_at = now + max(self.config.delay_seconds, 0.0)
            self.state.transactions[ref] = tx

        if tx.is_final:
            self._schedule(0.0, self._finalise, ref)
        elif outcome.resolves_later:
            self._schedule(max(self.config.delay_seconds, 0.0), self._finalise, ref)

        if self.state.take("lose_next_posts") or self.state.chance(faults.lost_response_rate):
            # The transaction exists, but the caller never learns it: the case that makes
            # retrying with the same reference (and treating 409 as success) necessary.
            if faults.lost_response_mode == "sleep":
                self._sleep_then(faults.timeout_seconds)
            raise _Drop
        return _Reply(202)

    def _status(self, product: str, kind: str, user: _User | None, ref: str) -> _Reply:
        faults = self.state.faults
        if not _is_uuid(ref):
            return _error(400, "BAD_REQUEST", "Reference id must be a UUID.")
        if self.state.chance(faults.status_error_rate):
            code = "INTERNAL_PROCESSING_ERROR" if self.state.chance(0.5) else "SERVICE_UNAVAILABLE"
            return _error(500 if code == "INTERNAL_PROCESSING_ERROR" else 503, code)
        if self.state.take("timeout_next") or self.state.chance(faults.timeout_rate):
            self._sleep_then(faults.timeout_seconds)
            return _apim(504, "Gateway Timeout")
        with self.state.lock:
            tx = self.state.transactions.get(ref.lower())
            # Another product's or another API user's reference is "not found" (section 4.2).
            if tx is None or tx.product != product or (user and tx.api_user != user.api_user):
                return _error(404, "RESOURCE_NOT_FOUND")
            self.state.refresh(tx)
            tx.status_reads += 1
            return _Reply(200, tx.status_json(reason_as_object=self.config.reason_as_object))

    def _account_holder(self, id_type: str, party_id: str, tail: str) -> _Reply:
        if id_type not in ("msisdn", "email", "party_code"):
            return _error(400, "BAD_REQUEST", "Account holder type must be lower case.")
        if tail == "active":
            answer = account_holder_answer(party_id)
            return _Reply(answer.http_status, answer.body)
        if tail == "basicuserinfo":
            return _Reply(
                200,
                {
                    "given_name": "Sand",
                    "family_name": "Box",
                    "name": "Sand Box",
                    "birthdate": "1976-08-13",
                    "locale": "sv_SE",
                    "gender": "MALE",
                    "sub": "0",
                    "updated_at": 1700000000,
                },
            )
        return _apim(404, "Resource not found")

    # --- callbacks (section 8) --------------------------------------------------------------

    def _schedule(self, delay: float, func: Any, *args: Any) -> None:
        timer = threading.Timer(delay, func, args=args)
        timer.daemon = True
        with self.state.lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def _finalise(self, ref: str) -> None:
        if self.stopping.is_set():
            return
        with self.state.lock:
            tx = self.state.transactions.get(ref)
            if tx is None:
                return
            if tx.status == PENDING and tx.resolve_at is not None:
                tx.resolve_at = min(tx.resolve_at, time.time())
            self.state.refresh(tx)
            if not tx.is_final or tx.callbacks_dispatched:
                return
            tx.callbacks_dispatched = True
            targets = [u for u in (tx.callback_url, self.config.signed_callback_url) if u]
            final = tx.status_json(reason_as_object=self.config.reason_as_object)
            stale = tx.status_json(reason_as_object=self.config.reason_as_object, status=PENDING)
            stale.pop("financialTransactionId", None)
        faults = self.state.faults
        for url in targets:
            if self.state.chance(faults.lost_callback_rate):
                self._log_callback(ref, url, None, final, outcome="lost")
                continue
            sends = [final]
            if self.state.chance(faults.duplicate_callback_rate):
                sends.append(final)
            if self.state.chance(faults.out_of_order_rate):
                sends.append(stale)
            self._schedule(faults.callback_delay_seconds, self._deliver, ref, url, sends)

    def _deliver(self, ref: str, url: str, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            if self.stopping.is_set():
                return
            self.send_callback(ref, url, body)

    def send_callback(self, ref: str, url: str, body: dict[str, Any]) -> None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        signature = hmac.new(self.config.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Signature-256": f"sha256={signature}"}
        method = self.config.callback_method.upper()
        try:
            response = requests.request(
                method, url, data=raw, headers=headers, timeout=self.config.callback_timeout
            )
        except requests.RequestException as exc:
            self._log_callback(ref, url, method, body, outcome="error", error=str(exc))
            return
        self._log_callback(ref, url, method, body, outcome="sent", status=response.status_code)

    def _log_callback(
        self,
        ref: str,
        url: str,
        method: str | None,
        body: dict[str, Any],
        *,
        outcome: str,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        with self.state.lock:
            self.state.callbacks.append(
                {
                    "reference_id": ref,
                    "url": url,
                    "method": method,
                    "body": body,
                    "outcome": outcome,
                    "status_code": status,
                    "error": error,
                    "at": time.time(),
                }
            )

    # --- control API ------------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> _Reply:
        parts = [p for p in path.split("/") if p][1:]
        if parts == ["faults"]:
            if method == "GET":
                return _Reply(200, self.state.faults.as_dict())
            if method == "POST":
                data = _json_or_none(body) if body.strip() else {}
                if not isinstance(data, dict):
                    return _Reply(400, {"error": "body must be a JSON object"})
                try:
                    return _Reply(200, self.state.set_faults(**data))
                except (TypeError, ValueError) as exc:
                    return _Reply(400, {"error": str(exc)})
        if parts == ["reset"] and method == "POST":
            self.reset()
            return _Reply(200, {"status": "reset"})
        if parts == ["expire-tokens"] and method == "POST":
            return _Reply(200, {"expired": self.state.expire_tokens()})
        if parts == ["transactions"] and method == "GET":
            return _Reply(200, {"results": self.state.all_transactions()})
        if len(parts) == 2 and parts[0] == "transactions" and method == "GET":
            tx = self.state.transaction(parts[1])
            return _Reply(200, tx) if tx else _Reply(404, {"error": "not found"})
        if parts == ["callbacks"] and method == "GET":
            return _Reply(200, {"results": self.state.callback_log()})
        return _Reply(404, {"error": "unknown simulator control path"})

    def reset(self) -> None:
        with self.state.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        self.state.reset()

    def stop(self) -> None:
        self.stopping.set()
        with self.state.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()


def _validate_body(data: Any, party_key: str) -> str | None:
    """MTN's 400 rules for requesttopay/transfer bodies (section 4.1); None when valid."""
    if not isinstance(data, dict):
        return "Body must be a JSON object."
    for name in ("amount", "currency", "externalId"):
        if not isinstance(data.get(name), str):
            return f"{name} must be a string."
    if not _AMOUNT.match(data["amount"]) or Decimal(data["amount"]) <= 0:
        return "amount must be a positive decimal string."
    if not re.fullmatch(r"[A-Z]{3}", data["currency"]):
        return "currency must be an ISO 4217 code."
    party = data.get(party_key)
    if not isinstance(party, dict):
        return f"{party_key} is required."
    if party.get("partyIdType") not in ("MSISDN", "EMAIL", "PARTY_CODE", "ALIAS"):
        return f"{party_key}.partyIdType is invalid."
    if not isinstance(party.get("partyId"), str) or not party["partyId"]:
        return f"{party_key}.partyId must be a string."
    if party["partyIdType"] == "MSISDN" and not party["partyId"].isdigit():
        return "MSISDN must be digits with the country code."
    for name in ("payerMessage", "payeeNote"):
        if name in data:
            value = data[name]
            if not isinstance(value, str):
                return f"{name} must be a string."
            if len(value) > _MAX_TEXT:
                return f"{name} is longer than {_MAX_TEXT} characters."
            if _FORBIDDEN_TEXT.search(value):
                return f"{name} contains unsupported special characters."
    return None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def _is_uuid4(value: str) -> bool:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return parsed.version == 4 and parsed.variant == uuid.RFC_4122


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like MTN behind APIM
    server_version = "MtnSandbox/1.0"
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK add
    # ~40 ms to every loopback call.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            reply = self.server.sandbox.handle(method, self.path, self.headers, body)
        except _Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        except Exception:
            logger.exception("MTN sandbox failed on %s %s", method, self.path)
            reply = _error(500, "INTERNAL_PROCESSING_ERROR")
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        logger.debug("sandbox %s - %s", self.address_string(), format % args)


class SandboxHandle:
    """A running simulator: ``base_url`` to point a client at, ``state`` to inspect."""

    def __init__(self, sandbox: Sandbox, server: _Server, thread: threading.Thread) -> None:
        self._sandbox = sandbox
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.base_url = f"http://{self.host}:{self.port}"

    @property
    def state(self) -> SandboxState:
        return self._sandbox.state

    @property
    def config(self) -> SandboxConfig:
        return self._sandbox.config

    def set_faults(self, **values: Any) -> dict[str, Any]:
        """Change faults at runtime (same keys as :class:`Faults`, plus ``seed``)."""
        return self._sandbox.state.set_faults(**values)

    def expire_tokens(self) -> int:
        return self._sandbox.state.expire_tokens()

    def reset(self) -> None:
        self._sandbox.reset()

    def stop(self) -> None:
        self._sandbox.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serve_until(self, event: threading.Event) -> None:
        """Block until ``event`` is set, then stop (used by the management command)."""
        try:
            while not event.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> SandboxHandle:
    """Start the simulator in a background thread; ``port=0`` picks a free port."""
    config = config or SandboxConfig()
    sandbox = Sandbox(config)
    server = _Server((host, port), sandbox)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.name = f"mtn-sandbox-{server.server_address[1]}"
    thread.start()
    return SandboxHandle(sandbox, server, thread)
