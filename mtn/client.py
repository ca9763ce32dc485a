"""HTTP client for MTN MoMo Open API (collection and disbursement).

Speaks only MTN: no imports from the gateway's other apps. Every call has explicit
(connect, read) timeouts, TLS is always verified, and the caller supplies the
``X-Reference-Id`` so that a retried POST reaches MTN at most once (reference section 4.1).
"""

from __future__ import annotations

import base64
import hashlib
import json as json_module
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from requests.structures import CaseInsensitiveDict

from .errors import (
    MtnConfigurationError,
    MtnConflictError,
    MtnError,
    MtnNotFoundError,
    MtnProtocolError,
    classify_exception,
    classify_response,
    decode_body,
    explain_refusal,
)
from .retry import RetryPolicy
from .tokens import (
    TOKEN_LOCK_WAIT_SECONDS,
    TOKEN_MEMO_SECONDS,
    TokenMemo,
    cache_add,
    cache_delete,
    cache_get,
    cache_set,
    token_lifetime,
)
from .values import (
    FINAL_STATUSES,
    PRODUCTS,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_SUCCESSFUL,
    AccountCheck,
    AccountHolderInfo,
    Balance,
    MtnCredentials,
    ProductCheck,
    SubmitResult,
    TransactionStatus,
    as_decimal,
    as_text,
    parse_transaction_status,
    sanitize_text,
)

logger = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "default"

# Called after every HTTP exchange with MTN as observer(product=, operation=, status_code=,
# code=, seconds=) (status_code None: no answer). The gateway registers its metrics here at
# start-up, so that this package imports nothing from the others. Observers must not raise.
call_observers: list[Callable[..., None]] = []


@dataclass(frozen=True)
class MtnConfig:
    """One MTN account: where it is, which market, and its credentials per product.

    ``account`` names it (``default`` is the platform account of the ``MTN_*`` settings);
    tokens are cached per (account, product, API user), and each config gets its own
    clients and connection pools (:func:`client_for`). A product may have no credentials
    (``None``); calling it then raises ``MtnConfigurationError`` ``PRODUCT_NOT_CONFIGURED``.
    Frozen and hashable, so it can key a registry of clients.
    """

    base_url: str
    target_environment: str
    collection: MtnCredentials | None
    disbursement: MtnCredentials | None
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    max_tries: int = 3
    max_seconds: float = 8.0
    account: str = DEFAULT_ACCOUNT

    def __post_init__(self) -> None:
        base_url = str(self.base_url).strip().rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("MTN base_url must be an http(s) URL")
        if not str(self.target_environment).strip():
            raise ValueError("MTN target_environment must not be empty")
        if not str(self.account).strip():
            raise ValueError("MTN account name must not be empty")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("MTN timeouts must be positive")
        object.__setattr__(self, "base_url", base_url)

    @classmethod
    def from_settings(cls) -> MtnConfig:
        """The platform account ``default``, described by the ``MTN_*`` settings."""
        return cls(
            base_url=settings.MTN_BASE_URL,
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
            **_settings_timeouts(),
        )

    @classmethod
    def for_account(
        cls,
        *,
        account: str,
        base_url: str,
        target_environment: str,
        collection: MtnCredentials | None = None,
        disbursement: MtnCredentials | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_tries: int | None = None,
        max_seconds: float | None = None,
    ) -> MtnConfig:
        """An account stored as data; timeouts and retry budget default to the MTN_* ones."""
        values: dict[str, Any] = _settings_timeouts()
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("max_tries", max_tries),
            ("max_seconds", max_seconds),
        ):
            if value is not None:
                values[name] = value
        return cls(
            account=account,
            base_url=base_url,
            target_environment=target_environment,
            collection=collection,
            disbursement=disbursement,
            **values,
        )

    @property
    def products(self) -> tuple[str, ...]:
        """The products this account has credentials for."""
        return tuple(p for p in PRODUCTS if getattr(self, p) is not None)

    def credentials(self, product: str) -> MtnCredentials:
        _check_product(product)
        creds: MtnCredentials | None = getattr(self, product)
        if creds is None:
            raise MtnConfigurationError(
                "PRODUCT_NOT_CONFIGURED",
                f"MTN account {self.account!r} has no {product} credentials",
            )
        return creds


def _settings_timeouts() -> dict[str, Any]:
    return {
        "connect_timeout": float(settings.MTN_CONNECT_TIMEOUT),
        "read_timeout": float(settings.MTN_READ_TIMEOUT),
        "max_tries": int(settings.MTN_SUBMIT_MAX_TRIES),
        "max_seconds": float(settings.MTN_SUBMIT_MAX_SECONDS),
    }


class MtnClient:
    """A client for one MTN account (``config``); it holds a pooled ``requests.Session``,
    so use one per thread and account (:func:`client_for`).

    Tokens are cached in Django's cache (shared between processes with Redis), keyed by
    account, base URL, product and API user, and minted by one caller at a time.
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
            session = new_session(self.config.base_url)
        self.session = session
        # Never turn TLS verification off (sparkplug's SDK does; reference section 10).
        self.session.verify = True
        # Each call goes straight to the session's adapter with a request built here (see
        # _exchange); what requests would work out on every call is worked out once.
        self._direct = _plain_session(session)
        self._base_url = _prepared_base_url(self.config.base_url)
        self._default_headers = dict(session.headers) if self._direct else {}
        # Tokens seen recently, so that most calls skip the shared cache's round trip, and
        # the ones this client minted, to live on while the shared cache is down.
        self._token_memo: dict[str, TokenMemo] = {}
        self._token_keys: dict[str, str] = {}
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
        available = as_decimal(body.get("availableBalance"))
        currency = as_text(body.get("currency"))
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

    def check_product(self, product: str) -> ProductCheck:
        """Ask MTN for a new ``product`` token and the balance, for an operator's check.

        Never raises for MTN's refusals: the result says in words which credential or
        setting MTN refused (``mtn_account_check``, the admin's "Check with MTN").
        """
        _check_product(product)
        step = "token"
        try:
            self.get_token(product, force_refresh=True)
            step = "balance"
            balance = self.account_balance(product=product, retry=False)
        except MtnError as exc:
            problem = explain_refusal(
                exc,
                product=product,
                step=step,
                target_environment=self.config.target_environment,
                base_url=self.config.base_url,
            )
            return ProductCheck(product=product, ok=False, code=exc.code, problem=problem)
        return ProductCheck(
            product=product, ok=True, balance=balance.available, currency=balance.currency
        )

    # --- tokens ---------------------------------------------------------------------------

    def get_token(self, product: str, *, force_refresh: bool = False) -> str:
        """A bearer token for ``product``, from the cache or freshly minted (one minter).

        The shared cache (Redis in production) may be down: then this process keeps using
        the token it minted for as long as that token lives, and mints without the
        cross-process lock; payments go on, at the cost of one token per process.
        """
        _check_product(product)
        key = self._token_cache_key(product)
        if not force_refresh:
            memo = self._token_memo.get(key)
            now = time.monotonic()
            if memo and now < memo.fresh_until:
                return memo.token
            token, reachable = cache_get(key)
            if token:
                self._remember_token(key, token, TOKEN_MEMO_SECONDS, TOKEN_MEMO_SECONDS)
                return token
            if not reachable and memo and now < memo.valid_until:
                return memo.token

        lock_key = f"{key}:lock"
        lock_timeout = int(self.config.connect_timeout + self.config.read_timeout) + 5
        lock_value = secrets.token_hex(8)
        locked = cache_add(lock_key, lock_value, timeout=lock_timeout)
        if locked is None:
            # No shared cache: no one to coordinate with.
            return self._mint_token(product, key)
        if not locked:
            # Someone else is minting: wait briefly for their token rather than minting a
            # second one; fall through and mint ourselves if they take too long or crashed.
            deadline = time.monotonic() + TOKEN_LOCK_WAIT_SECONDS
            while time.monotonic() < deadline:
                time.sleep(0.05)
                token, reachable = cache_get(key)
                if token:
                    return token
                if not reachable or cache_get(lock_key)[0] is None:
                    break
            return self._mint_token(product, key)
        try:
            if not force_refresh:
                token, _ = cache_get(key)
                if token:
                    return token
            return self._mint_token(product, key)
        finally:
            if cache_get(lock_key)[0] == lock_value:
                cache_delete(lock_key)

    def invalidate_token(self, product: str, token: str | None = None) -> None:
        """Drop the cached token (only if it is still ``token``, when given)."""
        key = self._token_cache_key(product)
        self._token_memo.pop(key, None)
        if token is None or cache_get(key)[0] == token:
            cache_delete(key)

    def _remember_token(self, key: str, token: str, fresh: float, valid: float) -> None:
        now = time.monotonic()
        self._token_memo[key] = TokenMemo(token, now + fresh, now + valid)

    def _token_cache_key(self, product: str) -> str:
        # Per account and product; the API user is in it too, so replacing an account's
        # credentials stops the old user's token from being used at once. The config is
        # frozen, so the key is worked out once per product.
        key = self._token_keys.get(product)
        if key is None:
            api_user = self.config.credentials(product).api_user
            digest = hashlib.sha256(
                f"{self.config.account}|{self.config.base_url}|{product}|{api_user}".encode()
            ).hexdigest()[:32]
            key = self._token_keys[product] = f"mtn:token:{digest}"
        return key

    def _mint_token(self, product: str, key: str) -> str:
        creds = self.config.credentials(product)
        response = self._exchange(
            "POST",
            f"/{product}/token/",
            headers={
                "Authorization": _basic_auth(creds.api_user, creds.api_key),
                "Ocp-Apim-Subscription-Key": creds.subscription_key,
            },
        )
        if response.status_code != 200:
            raise classify_response(response)
        body = decode_body(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise MtnProtocolError(
                "UNEXPECTED_RESPONSE", "Token response lacks access_token", status_code=200
            )
        lifetime = token_lifetime(body.get("expires_in"))
        if lifetime >= 1:
            cache_set(key, token, timeout=int(lifetime))
            # Trusted alone for a short while when the cache answers, for its whole life
            # when the cache is down.
            self._remember_token(key, token, min(TOKEN_MEMO_SECONDS, lifetime), lifetime)
        logger.info(
            "Minted MTN %s token for account %s (cached %ds)",
            product,
            self.config.account,
            int(lifetime),
        )
        return token

    # --- plumbing -------------------------------------------------------------------------

    @property
    def _timeout(self) -> tuple[float, float]:
        return (self.config.connect_timeout, self.config.read_timeout)

    def _policy(self, retry: bool) -> RetryPolicy:
        return self.retry_policy if retry else _ONE_TRY

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
        body = None if json is None else _json_bytes(json)
        return self._exchange(method, path, headers=all_headers, body=body)

    def _exchange(
        self, method: str, path: str, *, headers: dict[str, str], body: bytes | None = None
    ) -> requests.Response:
        """One HTTP request to MTN, timed and reported to ``call_observers``.

        Raises ``MtnNetworkError`` (or ``MtnConfigurationError`` for TLS) when no answer came.
        """
        started = time.monotonic()
        try:
            if self._direct:
                response = self._send_direct(method, path, headers, body)
            else:
                response = self.session.request(
                    method,
                    f"{self.config.base_url}{path}",
                    headers=headers,
                    data=body,
                    timeout=self._timeout,
                )
        except (requests.RequestException, ValueError) as exc:
            if not isinstance(exc, requests.RequestException):
                if not str(exc).startswith("Invalid header"):
                    raise
                # http.client refuses a header with a line break (ValueError) before sending
                # anything; requests reported it as InvalidHeader, and so do we.
                exc = requests.exceptions.InvalidHeader(str(exc))
            error = classify_exception(exc)
            _notify(method, path, None, error.code, started)
            raise error from exc
        failed = call_observers and response.status_code >= 300
        code = classify_response(response).code if failed else None
        _notify(method, path, response.status_code, code, started)
        return response

    def _send_direct(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> requests.Response:
        """The request as ``Session.request`` would send it, straight to the adapter.

        ``Session.request`` spends most of a call's CPU re-deriving per call what is fixed
        per client: merging session and request settings, re-reading the environment,
        re-parsing and re-quoting the URL, cookie jars, hooks and redirect handling (about
        two thirds of requests' own cost; bench/mtn_client_cpu.py). Here the URL's root is
        prepared once, the session's headers are merged in, and the adapter gets the same
        timeouts, TLS verification and proxies. Differences, none of which MTN's API uses:
        redirects are not followed (a 3xx is an unexpected answer), and cookies MTN may set
        are not sent back.
        """
        request = requests.PreparedRequest()
        request.method = method
        request.url = self._base_url + path
        merged: CaseInsensitiveDict[str | bytes] = CaseInsensitiveDict(self._default_headers)
        merged.update(headers)
        if body is not None or method not in _BODYLESS_METHODS:
            # As requests does: a body's length, and 0 for a POST without one.
            merged["Content-Length"] = str(len(body)) if body is not None else "0"
        request.headers = merged
        request.body = body
        adapter = self.session.get_adapter(request.url)
        response = adapter.send(
            request,
            timeout=self._timeout,
            verify=True,
            proxies=self.session.proxies,
        )
        # Read the whole answer (as Session.send does), which also gives the connection
        # back to the pool for the next call.
        _ = response.content
        return response


@dataclass(frozen=True)
class SandboxUser:
    """An API user as MTN's sandbox provisioning API describes it (reference section 2.3)."""

    api_user: str
    provider_callback_host: str
    target_environment: str


def provision_sandbox_user(
    *,
    base_url: str,
    subscription_key: str,
    callback_host: str,
    api_user: uuid.UUID | None = None,
    timeout: tuple[float, float] = (3.05, 10.0),
) -> MtnCredentials:
    """Create an API user and its key through MTN's sandbox provisioning API, as the
    ``momo-init`` tool of MTN's SDKs does (reference section 2).

    The user belongs to the product of ``subscription_key`` only (section 2.4), so call this
    once per product. ``callback_host`` is a bare host name, frozen at creation. The API key
    is returned once and never logged. Raises MtnError for MTN's refusals (401 bad key, 409
    for a used ``api_user``...), ValueError for a malformed host.
    """
    host = callback_host.strip()
    if not host or any(char in host for char in "/:?#@ "):
        raise ValueError("callback_host must be a host name, without scheme, port or path")
    user_id = _ref(api_user or uuid.uuid4())
    root = base_url.strip().rstrip("/")
    with requests.Session() as session:
        session.trust_env = False
        created = _provisioning_call(
            session,
            "POST",
            f"{root}/v1_0/apiuser",
            subscription_key,
            timeout,
            headers={"X-Reference-Id": user_id},
            json={"providerCallbackHost": host},
        )
        if created.status_code != 201:
            raise classify_response(created)
        issued = _provisioning_call(
            session, "POST", f"{root}/v1_0/apiuser/{user_id}/apikey", subscription_key, timeout
        )
        if issued.status_code not in (200, 201):  # some SDK docs print 200, MTN sends 201
            raise classify_response(issued)
    api_key = decode_body(issued)
    api_key = api_key.get("apiKey") if isinstance(api_key, dict) else None
    if not isinstance(api_key, str) or not api_key:
        raise MtnProtocolError("UNEXPECTED_RESPONSE", "apikey answer lacks apiKey")
    logger.info("Provisioned MTN sandbox API user %s for host %s", user_id, host)
    return MtnCredentials(subscription_key=subscription_key, api_user=user_id, api_key=api_key)


def sandbox_user(
    *,
    base_url: str,
    subscription_key: str,
    api_user: str,
    timeout: tuple[float, float] = (3.05, 10.0),
) -> SandboxUser:
    """GET /v1_0/apiuser/{id}: the user's callback host and target environment."""
    user_id = _ref(api_user)
    with requests.Session() as session:
        session.trust_env = False
        response = _provisioning_call(
            session,
            "GET",
            f"{base_url.strip().rstrip('/')}/v1_0/apiuser/{user_id}",
            subscription_key,
            timeout,
        )
    if response.status_code != 200:
        raise classify_response(response)
    body = _json_object(response)
    return SandboxUser(
        api_user=user_id,
        provider_callback_host=as_text(body.get("providerCallbackHost")) or "",
        target_environment=as_text(body.get("targetEnvironment")) or "",
    )


def _provisioning_call(
    session: requests.Session,
    method: str,
    url: str,
    subscription_key: str,
    timeout: tuple[float, float],
    *,
    headers: dict[str, str] | None = None,
    json: dict[str, Any] | None = None,
) -> requests.Response:
    # Provisioning takes the subscription key only: no token, no target environment.
    try:
        return session.request(
            method,
            url,
            headers={"Ocp-Apim-Subscription-Key": subscription_key, **(headers or {})},
            json=json,
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise classify_exception(exc) from exc


def check_account(config: MtnConfig, *, client: MtnClient | None = None) -> AccountCheck:
    """Check every product ``config`` has credentials for: a new token, then the balance.

    ``AccountCheck.ok`` is False when MTN refused anything (the command exits non-zero).
    """
    client = client or MtnClient(config)
    checks = tuple(client.check_product(product) for product in config.products)
    return AccountCheck(
        account=config.account, target_environment=config.target_environment, checks=checks
    )


_clients = threading.local()


def client_for(config: MtnConfig) -> MtnClient:
    """The client for ``config`` in this thread: one token memo per account configuration
    and thread, and one ``requests.Session`` (keep-alive connection pool) per account and
    thread, shared by its configurations that differ only in timeouts or retries (the
    quick one of callbacks, say). A session is not thread-safe, hence per thread."""
    clients: dict[MtnConfig, MtnClient] | None = getattr(_clients, "by_config", None)
    if clients is None:
        clients = _clients.by_config = {}
        _clients.sessions = {}
    client = clients.get(config)
    if client is None:
        sessions: dict[tuple[str, str], requests.Session] = _clients.sessions
        where = (config.account, config.base_url)
        session = sessions.get(where)
        if session is None:
            session = sessions[where] = new_session(config.base_url)
        client = clients[config] = MtnClient(config, session=session)
    return client


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


_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ONE_TRY = RetryPolicy(max_tries=1)


class MtnAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, keeping per host what the stock one works out from the URL on
    every call (its connection pool's key, the request target) when no proxy is in play.
    With a proxy it is the stock adapter."""

    def __init__(self) -> None:
        super().__init__()
        self._pools: dict[tuple[str, Any, Any], Any] = {}

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: dict[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        if proxies:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        key = (_origin(str(request.url)), verify, cert)
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:  # new, or closed (evicted, session closed)
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            self._pools[key] = pool
        return pool

    def request_url(self, request: requests.PreparedRequest, proxies: dict[str, str] | None) -> str:
        if proxies:
            return super().request_url(request, proxies)
        url = str(request.url)
        return url[len(_origin(url)) :] or "/"

    def close(self) -> None:
        self._pools.clear()
        super().close()


def _origin(url: str) -> str:
    # "https://host:port/path?query" -> "https://host:port" (our URLs carry no user info).
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def new_session(base_url: str) -> requests.Session:
    """A session for one MTN base URL: keep-alive pool, verified TLS, proxies read once."""
    session = requests.Session()
    adapter = MtnAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # requests re-reads the proxy environment on every call when trust_env is on (about a
    # millisecond each); read it once here instead.
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = True
    return session


def _plain_session(session: Any) -> bool:
    """Whether ``session`` is a requests Session with nothing per call that ``_send_direct``
    would skip (no auth, hooks, cookies, or redirect-following differences that matter)."""
    return (
        isinstance(session, requests.Session)
        and session.auth is None
        and not any(session.hooks.values())
        and not session.cookies
        and not session.params
        and not session.cert
    )


def _prepared_base_url(base_url: str) -> str:
    # requests' own URL preparation (IDNA host, quoting), once per client.
    prepared = requests.PreparedRequest()
    prepared.prepare_url(base_url, None)
    return str(prepared.url).rstrip("/")


def _json_bytes(body: dict[str, Any]) -> bytes:
    # Exactly what requests sends for json=: the stdlib's default separators, no NaN.
    return json_module.dumps(body, allow_nan=False).encode("utf-8")


def _basic_auth(user: str, password: str) -> str:
    # As requests' HTTPBasicAuth: latin-1 bytes, base64 (the token endpoint, section 3.1).
    pair = f"{user}:{password}".encode("latin1")
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _ref(reference_id: uuid.UUID | str) -> str:
    # Accept a str too, but always send the canonical lower-case form.
    return str(uuid.UUID(str(reference_id)))


def _party(msisdn: str) -> str:
    # The number goes into the path: quote everything so it cannot change the path.
    return quote(str(msisdn), safe="")


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
    "DEFAULT_ACCOUNT",
    "FINAL_STATUSES",
    "PRODUCTS",
    "STATUS_FAILED",
    "STATUS_PENDING",
    "STATUS_SUCCESSFUL",
    "AccountCheck",
    "AccountHolderInfo",
    "Balance",
    "MtnClient",
    "MtnConfig",
    "MtnCredentials",
    "MtnError",
    "ProductCheck",
    "SandboxUser",
    "SubmitResult",
    "TransactionStatus",
    "check_account",
    "client_for",
    "parse_transaction_status",
    "provision_sandbox_user",
    "sandbox_user",
    "sanitize_text",
]
