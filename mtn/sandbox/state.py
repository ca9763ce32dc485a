"""Everything one simulator knows: API users, tokens, transactions, logs. Thread-safe."""

from __future__ import annotations

import collections
import copy
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .config import PRODUCTS, SandboxConfig
from .scenarios import FAILED, PENDING, REASON_MESSAGES, SUCCESSFUL
from .wire import normalise_amount


@dataclass
class ApiUser:
    api_user: str
    products: set[str]
    api_keys: set[str]
    callback_host: str | None
    provisioned: bool = False


@dataclass
class IssuedToken:
    product: str
    api_user: str
    expires_at: float


@dataclass
class SimTransaction:
    """One requesttopay, transfer or refund, as MTN would keep it."""

    reference_id: str
    product: str
    kind: str  # "requesttopay", "transfer" or "refund"
    api_user: str
    request: dict[str, Any]
    party_key: str  # "payer" or "payee"
    party: dict[str, Any]  # {partyIdType, partyId}; a refund's payee is the original payer
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
    reference_id_to_refund: str | None = None  # refunds only
    has_financial_id: bool = True  # False: SUCCESSFUL without financialTransactionId (…490)
    final_at: float | None = None  # when it became SUCCESSFUL or FAILED
    # Delivery notifications accepted for this requesttopay: {message, language, at}.
    notifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def party_id(self) -> str:
        return str(self.party.get("partyId", ""))

    @property
    def amount(self) -> Decimal:
        return Decimal(self.request["amount"])

    @property
    def is_final(self) -> bool:
        return self.status in (SUCCESSFUL, FAILED)

    def status_json(self, *, reason_as_object: bool, status: str | None = None) -> dict[str, Any]:
        """The status endpoint / callback body: no reference id, like MTN's (section 8.1)."""
        status = status or self.status
        body: dict[str, Any] = {"currency": self.request["currency"]}
        if self.request.get("amount") is not None:  # None: told to answer without (control API)
            body = {"amount": normalise_amount(self.request["amount"]), **body}
        # MTN's FAILED answers carry no financialTransactionId (its own examples): nothing
        # moved. Only a SUCCESSFUL one may, and not always (…490).
        if status == SUCCESSFUL and self.financial_transaction_id:
            body["financialTransactionId"] = self.financial_transaction_id
        body["externalId"] = self.request["externalId"]
        if self.party:  # a refund of a collection MTN does not know has no payee to show
            body[self.party_key] = dict(self.party)
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
            "reference_id_to_refund": self.reference_id_to_refund,
            "callback_url": self.callback_url,
            "financial_transaction_id": self.financial_transaction_id,
            "post_count": self.post_count,
            "conflict_count": self.conflict_count,
            "status_reads": self.status_reads,
            "created_at": self.created_at,
            "final_at": self.final_at,
            "notifications": copy.deepcopy(self.notifications),
            "request": copy.deepcopy(self.request),
        }


def financial_id() -> str:
    return str(secrets.randbelow(9 * 10**8) + 10**8)


class SandboxState:
    """Everything the simulator knows; thread-safe; read by tests for assertions."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self._initial_faults = copy.deepcopy(config.faults)
        self.faults = copy.deepcopy(config.faults)
        self.rng = random.Random(config.seed)  # noqa: S311 - fault injection, not security
        self.transactions: dict[str, SimTransaction] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.users: dict[str, ApiUser] = {}
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
                user = ApiUser(creds.api_user, set(), set(), self.config.provider_callback_host)
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

    @property
    def is_sandbox(self) -> bool:
        """MTN's test numbers exist only in its sandbox, not in a production market."""
        return self.config.target_environment == "sandbox"

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

    def refunds_of(self, reference_id: str | uuid.UUID) -> list[dict[str, Any]]:
        """The refunds asked for the collection ``reference_id``, oldest first."""
        wanted = str(reference_id).lower()
        with self.lock:
            refunds = [
                tx
                for tx in self.transactions.values()
                if tx.kind == "refund" and tx.reference_id_to_refund == wanted
            ]
            for tx in refunds:
                self.refresh(tx)
            return [tx.inspect() for tx in sorted(refunds, key=lambda t: t.created_at)]

    def request_count(self, method: str | None = None, path_prefix: str = "") -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r["method"] == method) and r["path"].startswith(path_prefix)
            )

    def request_log(self) -> list[dict[str, Any]]:
        """Every MTN call received (method, path, status, reference, sent headers)."""
        with self.lock:
            return [copy.deepcopy(r) for r in self.requests]

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
            tx.final_at = tx.resolve_at
            if tx.has_financial_id:
                tx.financial_transaction_id = tx.financial_transaction_id or financial_id()
