"""HTTP client for MTN MoMo Open API (collection and disbursement).

Speaks only MTN: no imports from the gateway's other apps. Every call has explicit
(connect, read) timeouts, TLS is always verified, and the caller supplies the
``X-Reference-Id`` so that a retried POST reaches MTN at most once (reference section 4.1).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache

from .errors import (
    MtnConflictError,
    MtnError,
    MtnNotFoundError,
    MtnProtocolError,
    classify_exception,
    classify_response,
    decode_body,
)
from .retry import RetryPolicy

logger = logging.getLogger(__name__)

PRODUCTS = ("collection", "disbursement")

STATUS_PENDING = "PENDING"
STATUS_SUCCESSFUL = "SUCCESSFUL"
STATUS_FAILED = "FAILED"
FINAL_STATUSES = frozenset({STATUS_SUCCESSFUL, STATUS_FAILED})

# MTN caps payerMessage/payeeNote at 160 characters and rejects "unsupported special
# characters" with a 400 (apostrophe documented; '&' in sparkplug/momoapi-node#84). We keep
# letters (any script), digits, spaces and plain punctuation only.
TEXT_MAX_LENGTH = 160
_TEXT_DISALLOWED = re.compile(r"[^\w .,:\-/()#!?@+]", re.UNICODE)
_WHITESPACE = re.compile(r"\s+")

# Token refresh: MTN advises refreshing ~10 minutes before the 3600 s expiry (section 3.3).
TOKEN_REFRESH_MARGIN_SECONDS = 600
TOKEN_LOCK_WAIT_SECONDS = 5.0
# How long a process reuses a token without asking the shared cache. Far inside the refresh
# margin, so a remembered token is always still valid at MTN.
TOKEN_MEMO_SECONDS = 30.0

# Called after every HTTP exchange with MTN as observer(product=, operation=, status_code=,
# code=, seconds=) (status_code None: no answer). The gateway registers its metrics here at
# start-up, so that this package imports nothing from the others. Observers must not raise.
call_observers: list[Callable[..., None]] = []


@dataclass(frozen=True)
class MtnCredentials:
    subscription_key: str = field(repr=False)
    api_user: str
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class MtnConfig:
    base_url: str
    target_environment: str
    collection: MtnCredentials
    disbursement: MtnCredentials
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    max_tries: int = 3
    max_seconds: float = 8.0

    @classmethod
    def from_settings(cls) -> MtnConfig:
        return cls(
            base_url=settings.MTN_BASE_URL.rstrip("/"),
            target_environment=settings.MTN_TARGET_ENVIRONMENT,
            collection=MtnCredentials(
                subscription_key=settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
                api_user=settings.MTN_COLLECTION_API_USER,
                api_key=settings.MTN_COLLECTION_API_KEY,
            ),
            disbursement=MtnCredentials(
                subscription_key=settings.MTN_DISBURSEMENT_SUBSCRIPTION_KEY,
                api_user=settings.MTN_DISBURSEMENT_API_USER,
                api_key=settings.MTN_DISBURSEMENT_API_KEY,
            ),
            connect_timeout=float(settings.MTN_CONNECT_TIMEOUT),
            read_timeout=float(settings.MTN_READ_TIMEOUT),
            max_tries=int(settings.MTN_SUBMIT_MAX_TRIES),
            max_seconds=float(settings.MTN_SUBMIT_MAX_SECONDS),
        )

    def credentials(self, product: str) -> MtnCredentials:
        if product == "collection":
            return self.collection
        if product == "disbursement":
            return self.disbursement
        raise ValueError(f"unknown MTN product {product!r}")


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of a request-to-pay, transfer or refund POST.

    ``already_existed`` is True when MTN answered 409 ``RESOURCE_ALREADY_EXIST`` for our
    reference: an earlier attempt landed, so the transaction exists and must be polled.
    """

    already_existed: bool


@dataclass(frozen=True)
class Balance:
    available: Decimal
    currency: str


@dataclass(frozen=True)
class AccountHolderInfo:
    """The name of a MoMo account holder, and nothing else MTN told about them."""

    name: str | None
    given_name: str | None = None
    family_name: str | None = None

    @classmethod
    def from_mtn(cls, body: dict[str, Any]) -> AccountHolderInfo:
        given = _name_part(body.get("given_name"))
        family = _name_part(body.get("family_name"))
        name = _name_part(body.get("name"))
        if name is None and (given or family):
            name = " ".join(part for part in (given, family) if part)
        return cls(name=name, given_name=given, family_name=family)


def _name_part(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = " ".join(value.split())[:200]
    return cleaned or None


@dataclass(frozen=True)
class TransactionStatus:
    """A status-endpoint (or callback) body, normalised. ``raw`` keeps MTN's JSON as received."""

    status: str
    raw_status: str | None
    amount: Decimal | None
    currency: str | None
    external_id: str | None
    financial_transaction_id: str | None
    party_id: str | None
    reason_code: str | None
    reason_message: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def _as_text(value: Any) -> str | None:
    """A string or number as text; anything else (dict, list, bool, None) as None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    return None


def _as_decimal(value: Any) -> Decimal | None:
    # MTN's spec says string, its own example shows a number; accept both (section 4.2).
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str | int | Decimal):
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def parse_transaction_status(body: dict[str, Any]) -> TransactionStatus:
    """Normalise MTN's status JSON (status endpoint and callbacks share it, section 8.1).

    ``CREATED`` and any unknown status map to PENDING (never final). ``reason`` may be a plain
    string (what the live platform sends) or ``{code, message}`` (the OpenAPI spec). Odd field
    types are tolerated; only a non-dict body raises ``ValueError``.
    """
    if not isinstance(body, dict):
        raise ValueError(f"MTN status body must be a JSON object, not {type(body).__name__}")
    raw_status = _as_text(body.get("status"))
    normalised = raw_status.strip().upper() if raw_status else ""
    status = normalised if normalised in FINAL_STATUSES else STATUS_PENDING

    reason_code: str | None = None
    reason_message: str | None = None
    reason = body.get("reason")
    if isinstance(reason, dict):
        reason_code = _as_text(reason.get("code"))
        reason_message = _as_text(reason.get("message"))
    else:
        reason_code = _as_text(reason)
    reason_code = reason_code or None

    party_id = None
    for key in ("payer", "payee"):
        party = body.get(key)
        if isinstance(party, dict) and _as_text(party.get("partyId")):
            party_id = _as_text(party.get("partyId"))
            break

    currency = _as_text(body.get("currency"))
    return TransactionStatus(
        status=status,
        raw_status=raw_status,
        amount=_as_decimal(body.get("amount")),
        currency=currency.strip().upper() if currency else None,
        external_id=_as_text(body.get("externalId")),
        financial_transaction_id=_as_text(body.get("financialTransactionId")) or None,
        party_id=party_id,
        reason_code=reason_code,
        reason_message=reason_message,
        raw=dict(body),
    )


def sanitize_text(value: str | None) -> str | None:
    """payerMessage/payeeNote as MTN accepts them, or None when nothing is left to send."""
    if value is None:
        return None
    cleaned = _TEXT_DISALLOWED.sub("", str(value))
    cleaned = _WHITESPACE.sub(" ", cleaned).strip()
    cleaned = cleaned[:TEXT_MAX_LENGTH].rstrip()
    return cleaned or None


def _token_lifetime(expires_in: Any) -> float:
    """Seconds to cache a token: expiry minus ~10 min, but at least half of short lifetimes."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        seconds = 3600.0  # MTN documents 3600 everywhere (section 3.2)
    if seconds != seconds or seconds <= 0:
        return 0.0
    margin = min(TOKEN_REFRESH_MARGIN_SECONDS, seconds / 2)
    return max(seconds - margin, 0.0)


class MtnClient:
    """One client per process is enough; it holds a pooled ``requests.Session``.

    Tokens are cached in Django's cache (shared between processes with Redis), keyed by base
    URL, product and API user, and minted by one caller at a time.
    """

    def __init__(
        self,
        config: MtnConfig | None = None,
        *,
        session: requests.Session | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.config = config or MtnConfig.from_settings()
        if session is None:
            session = requests.Session()
            # requests re-reads the proxy environment on every call when trust_env is on
            # (about a millisecond each); read it once here instead.
            session.trust_env = False
            session.proxies.update(requests.utils.get_environ_proxies(self.config.base_url))
        self.session = session
        # Never turn TLS verification off (sparkplug's SDK does; reference section 10).
        self.session.verify = True
        # Tokens seen recently, so that most calls skip the shared cache's round trip.
        self._token_memo: dict[str, tuple[str, float]] = {}
        self.retry_policy = retry_policy or RetryPolicy(
            max_tries=self.config.max_tries, max_seconds=self.config.max_seconds
        )

    # --- public API: collection -----------------------------------------------------------

    def request_to_pay(
        self,
        *,
        reference_id: uuid.UUID,
        amount: str,
        currency: str,
        external_id: str,
        payer_msisdn: str,
        payer_message: str | None = None,
        payee_note: str | None = None,
        callback_url: str | None = None,
        retry: bool = True,
    ) -> SubmitResult:
        """POST /collection/v1_0/requesttopay. Idempotent per ``reference_id``.

        Returns ``already_existed=True`` on 409 RESOURCE_ALREADY_EXIST. Raises MtnError.
        """
        body = self._transaction_body(
            amount=amount,
            currency=currency,
            external_id=external_id,
            party_key="payer",
            msisdn=payer_msisdn,
            payer_message=payer_message,
            payee_note=payee_note,
        )
        return self._submit(
            "collection",
            "/collection/v1_0/requesttopay",
            reference_id=reference_id,
            body=body,
            callback_url=callback_url,
            retry=retry,
        )

    def request_to_pay_status(
        self, *, reference_id: uuid.UUID, retry: bool = True
    ) -> TransactionStatus:
        """GET /collection/v1_0/requesttopay/{ref}. 404 raises MtnNotFoundError."""
        return self._status(
            "collection", f"/collection/v1_0/requesttopay/{_ref(reference_id)}", retry=retry
        )

    # --- public API: disbursement ---------------------------------------------------------

    def transfer(
        self,
        *,
        reference_id: uuid.UUID,
        amount: str,
        currency: str,
        external_id: str,
        payee_msisdn: str,
        payer_message: str | None = None,
        payee_note: str | None = None,
        callback_url: str | None = None,
        retry: bool = True,
    ) -> SubmitResult:
        """POST /disbursement/v1_0/transfer (v2_0 is a 404 on MTN). Idempotent per reference."""
        body = self._transaction_body(
            amount=amount,
            currency=currency,
            external_id=external_id,
            party_key="payee",
            msisdn=payee_msisdn,
            payer_message=payer_message,
            payee_note=payee_note,
        )
        return self._submit(
            "disbursement",
            "/disbursement/v1_0/transfer",
            reference_id=reference_id,
            body=body,
            callback_url=callback_url,
            retry=retry,
        )

    def transfer_status(self, *, reference_id: uuid.UUID, retry: bool = True) -> TransactionStatus:
        """GET /disbursement/v1_0/transfer/{ref}. 404 raises MtnNotFoundError."""
        return self._status(
            "disbursement", f"/disbursement/v1_0/transfer/{_ref(reference_id)}", retry=retry
        )

    def refund(
        self,
        *,
        reference_id: uuid.UUID,
        amount: str,
        currency: str,
        external_id: str,
        reference_id_to_refund: uuid.UUID | str,
        payer_message: str | None = None,
        payee_note: str | None = None,
        callback_url: str | None = None,
        retry: bool = True,
    ) -> SubmitResult:
        """POST /disbursement/v1_0/refund of the request-to-pay ``reference_id_to_refund``.

        Refunds live under Disbursement, so they use its key and token (reference section 5).
        The body has no payee: MTN pays back the original payer. Idempotent per
        ``reference_id`` like a transfer: 409 RESOURCE_ALREADY_EXIST is ``already_existed``.
        """
        body: dict[str, Any] = {
            "amount": str(amount),
            "currency": str(currency),
            "externalId": str(external_id),
            "referenceIdToRefund": _ref(reference_id_to_refund),
        }
        message = sanitize_text(payer_message)
        note = sanitize_text(payee_note)
        if message:
            body["payerMessage"] = message
        if note:
            body["payeeNote"] = note
        return self._submit(
            "disbursement",
            "/disbursement/v1_0/refund",
            reference_id=reference_id,
            body=body,
            callback_url=callback_url,
            retry=retry,
        )

    def refund_status(self, *, reference_id: uuid.UUID, retry: bool = True) -> TransactionStatus:
        """GET /disbursement/v1_0/refund/{ref} (body like a transfer's, with ``payee``)."""
        return self._status(
            "disbursement", f"/disbursement/v1_0/refund/{_ref(reference_id)}", retry=retry
        )

    # --- public API: account --------------------------------------------------------------

    def account_balance(self, *, product: str = "collection", retry: bool = True) -> Balance:
        """GET /{product}/v1_0/account/balance."""
        _check_product(product)
        response = self._call(product, "GET", f"/{product}/v1_0/account/balance", retry=retry)
        body = _json_object(response)
        available = _as_decimal(body.get("availableBalance"))
        currency = _as_text(body.get("currency"))
        if available is None or not currency:
            raise MtnProtocolError("UNEXPECTED_RESPONSE", "Balance body lacks fields")
        return Balance(available=available, currency=currency)

    def account_holder_active(
        self, *, product: str = "collection", msisdn: str, retry: bool = True
    ) -> bool:
        """GET /{product}/v1_0/accountholder/msisdn/{msisdn}/active (type must be lower case).

        False for a holder whose wallet is not active and for a number MTN does not know
        (MTN answers those 404 RESOURCE_NOT_FOUND; reference section 7.1). Other refusals
        (NOT_ALLOWED, outages...) raise MtnError.
        """
        _check_product(product)
        path = f"/{product}/v1_0/accountholder/msisdn/{_party(msisdn)}/active"
        try:
            response = self._call(product, "GET", path, retry=retry)
        except MtnNotFoundError:
            return False
        result = _json_object(response).get("result")
        if not isinstance(result, bool):
            raise MtnProtocolError("UNEXPECTED_RESPONSE", "accountholder body lacks 'result'")
        return result

    def basic_user_info(
        self, *, product: str = "collection", msisdn: str, retry: bool = True
    ) -> AccountHolderInfo:
        """GET /{product}/v1_0/accountholder/msisdn/{msisdn}/basicuserinfo: the holder's name.

        MTN answers OpenID-style personal data (birth date, gender, locale...); only the name
        fields are kept, so nothing else can leak into logs, answers or storage. A number MTN
        does not know raises MtnNotFoundError (ask ``account_holder_active`` first).
        """
        _check_product(product)
        path = f"/{product}/v1_0/accountholder/msisdn/{_party(msisdn)}/basicuserinfo"
        response = self._call(product, "GET", path, retry=retry)
        return AccountHolderInfo.from_mtn(_json_object(response))

    # --- tokens ---------------------------------------------------------------------------

    def get_token(self, product: str, *, force_refresh: bool = False) -> str:
        """A bearer token for ``product``, from the cache or freshly minted (one minter)."""
        _check_product(product)
        key = self._token_cache_key(product)
        if not force_refresh:
            memo = self._token_memo.get(key)
            if memo and time.monotonic() < memo[1]:
                return memo[0]
            token = cache.get(key)
            if token:
                self._remember_token(key, token, TOKEN_MEMO_SECONDS)
                return token

        lock_key = f"{key}:lock"
        lock_timeout = int(self.config.connect_timeout + self.config.read_timeout) + 5
        lock_value = secrets.token_hex(8)
        if not cache.add(lock_key, lock_value, timeout=lock_timeout):
            # Someone else is minting: wait briefly for their token rather than minting a
            # second one; fall through and mint ourselves if they take too long or crashed.
            deadline = time.monotonic() + TOKEN_LOCK_WAIT_SECONDS
            while time.monotonic() < deadline:
                time.sleep(0.05)
                token = cache.get(key)
                if token:
                    return token
                if cache.get(lock_key) is None:
                    break
            return self._mint_token(product, key)
        try:
            if not force_refresh:
                token = cache.get(key)
                if token:
                    return token
            return self._mint_token(product, key)
        finally:
            if cache.get(lock_key) == lock_value:
                cache.delete(lock_key)

    def invalidate_token(self, product: str, token: str | None = None) -> None:
        """Drop the cached token (only if it is still ``token``, when given)."""
        key = self._token_cache_key(product)
        self._token_memo.pop(key, None)
        if token is None or cache.get(key) == token:
            cache.delete(key)

    def _remember_token(self, key: str, token: str, seconds: float) -> None:
        self._token_memo[key] = (token, time.monotonic() + seconds)

    def _token_cache_key(self, product: str) -> str:
        api_user = self.config.credentials(product).api_user
        digest = hashlib.sha256(
            f"{self.config.base_url}|{product}|{api_user}".encode()
        ).hexdigest()[:32]
        return f"mtn:token:{digest}"

    def _mint_token(self, product: str, key: str) -> str:
        creds = self.config.credentials(product)
        response = self._exchange(
            "POST",
            f"/{product}/token/",
            auth=(creds.api_user, creds.api_key),
            headers={"Ocp-Apim-Subscription-Key": creds.subscription_key},
        )
        if response.status_code != 200:
            raise classify_response(response)
        body = decode_body(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise MtnProtocolError(
                "UNEXPECTED_RESPONSE", "Token response lacks access_token", status_code=200
            )
        lifetime = _token_lifetime(body.get("expires_in"))
        if lifetime >= 1:
            cache.set(key, token, timeout=int(lifetime))
            self._remember_token(key, token, min(TOKEN_MEMO_SECONDS, lifetime))
        logger.info("Minted MTN %s token (cached %ds)", product, int(lifetime))
        return token

    # --- plumbing -------------------------------------------------------------------------

    @property
    def _timeout(self) -> tuple[float, float]:
        return (self.config.connect_timeout, self.config.read_timeout)

    def _policy(self, retry: bool) -> RetryPolicy:
        return self.retry_policy if retry else RetryPolicy(max_tries=1)

    def _transaction_body(
        self,
        *,
        amount: str,
        currency: str,
        external_id: str,
        party_key: str,
        msisdn: str,
        payer_message: str | None,
        payee_note: str | None,
    ) -> dict[str, Any]:
        # MTN wants every value as a JSON string (section 4.1).
        body: dict[str, Any] = {
            "amount": str(amount),
            "currency": str(currency),
            "externalId": str(external_id),
            party_key: {"partyIdType": "MSISDN", "partyId": str(msisdn)},
        }
        message = sanitize_text(payer_message)
        note = sanitize_text(payee_note)
        if message:
            body["payerMessage"] = message
        if note:
            body["payeeNote"] = note
        return body

    def _submit(
        self,
        product: str,
        path: str,
        *,
        reference_id: uuid.UUID,
        body: dict[str, Any],
        callback_url: str | None,
        retry: bool,
    ) -> SubmitResult:
        headers = {"X-Reference-Id": _ref(reference_id), "Content-Type": "application/json"}
        if callback_url:
            # MTN 400s on an empty X-Callback-Url; omitting it is always accepted (section 4.1).
            headers["X-Callback-Url"] = callback_url
        try:
            self._call(product, "POST", path, headers=headers, json=body, retry=retry)
        except MtnConflictError:
            # Our reference already exists at MTN: an earlier attempt (maybe one whose answer
            # was lost) landed. Never an error and never a reason to mint a new reference.
            logger.info("MTN %s already has reference %s", product, headers["X-Reference-Id"])
            return SubmitResult(already_existed=True)
        return SubmitResult(already_existed=False)

    def _status(self, product: str, path: str, *, retry: bool) -> TransactionStatus:
        response = self._call(product, "GET", path, retry=retry)
        return parse_transaction_status(_json_object(response))

    def _call(
        self,
        product: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """One logical product call, retried per policy with identical headers and body."""

        def attempt() -> requests.Response:
            return self._attempt(product, method, path, headers=headers or {}, json=json)

        return self._policy(retry).run(attempt, description=f"{method} {path}")

    def _attempt(
        self,
        product: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json: dict[str, Any] | None,
    ) -> requests.Response:
        creds = self.config.credentials(product)
        token = self.get_token(product)
        response = self._send(method, path, creds, token, headers, json)
        if response.status_code == 401 and not _is_gateway_error(response):
            # Bearer expired or revoked (no APIM statusCode): mint once and retry once, as
            # MTN-Group's PHP SDK does. A statusCode 401 is a subscription-key error that a new
            # token cannot fix (section 3.4).
            self.invalidate_token(product, token)
            token = self.get_token(product, force_refresh=True)
            response = self._send(method, path, creds, token, headers, json)
        if 200 <= response.status_code < 300:
            return response
        raise classify_response(response)

    def _send(
        self,
        method: str,
        path: str,
        creds: MtnCredentials,
        token: str,
        headers: dict[str, str],
        json: dict[str, Any] | None,
    ) -> requests.Response:
        all_headers = {
            "Authorization": f"Bearer {token}",
            "X-Target-Environment": self.config.target_environment,
            "Ocp-Apim-Subscription-Key": creds.subscription_key,
            **headers,
        }
        return self._exchange(method, path, headers=all_headers, json=json)

    def _exchange(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request to MTN, timed and reported to ``call_observers``.

        Raises ``MtnNetworkError`` (or ``MtnConfigurationError`` for TLS) when no answer came.
        """
        started = time.monotonic()
        try:
            response = self.session.request(
                method, f"{self.config.base_url}{path}", timeout=self._timeout, **kwargs
            )
        except requests.RequestException as exc:
            error = classify_exception(exc)
            _notify(method, path, None, error.code, started)
            raise error from exc
        failed = call_observers and response.status_code >= 300
        code = classify_response(response).code if failed else None
        _notify(method, path, response.status_code, code, started)
        return response


def _notify(
    method: str, path: str, status_code: int | None, code: str | None, started: float
) -> None:
    """Tell ``call_observers`` about one exchange; the operation name carries no id or number."""
    if not call_observers:
        return
    seconds = time.monotonic() - started
    parts = [part for part in path.split("/") if part]  # collection, v1_0, requesttopay, <ref>
    product = parts[0] if parts else "unknown"
    operation = "token" if parts[1:2] == ["token"] else (parts[2] if len(parts) > 2 else "unknown")
    if method == "GET" and operation in ("requesttopay", "transfer", "refund"):
        operation += "_status"
    for observer in call_observers:
        try:
            observer(
                product=product,
                operation=operation,
                status_code=status_code,
                code=code,
                seconds=seconds,
            )
        except Exception:  # noqa: BLE001 - metrics must never break a payment
            logger.debug("MTN call observer %r failed", observer, exc_info=True)


def _ref(reference_id: uuid.UUID | str) -> str:
    # Accept a str too, but always send the canonical lower-case form.
    return str(uuid.UUID(str(reference_id)))


def _party(msisdn: str) -> str:
    # The number goes into the path: quote everything so it cannot change the path.
    return requests.utils.quote(str(msisdn), safe="")


def _check_product(product: str) -> None:
    if product not in PRODUCTS:
        raise ValueError(f"unknown MTN product {product!r}")


def _is_gateway_error(response: requests.Response) -> bool:
    body = decode_body(response)
    return isinstance(body, dict) and "statusCode" in body


def _json_object(response: requests.Response) -> dict[str, Any]:
    body = decode_body(response)
    if not isinstance(body, dict):
        raise MtnProtocolError(
            "UNEXPECTED_RESPONSE",
            f"MTN answered HTTP {response.status_code} without a JSON object",
            status_code=response.status_code,
        )
    return body


__all__ = [
    "AccountHolderInfo",
    "Balance",
    "MtnClient",
    "MtnConfig",
    "MtnCredentials",
    "MtnError",
    "SubmitResult",
    "TransactionStatus",
    "parse_transaction_status",
    "sanitize_text",
]
