"""One Idempotency-Key sent twice at once, on PostgreSQL with real threads, many rounds.

The loser of the race used to decide its own 422 (``insufficient_funds`` against the
winner's payout, ``refund_exceeds_payment`` against the winner's refund) and answer it
although the key was not its own: a merchant trusting that 422 would mark a paid withdrawal
as failed. Now every answer is the winner's (201, replayed) or 409 ``idempotency_key_in_use``.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.db import connection

from conftest import fund_tenant
from gateway.models import IdempotencyKey
from ledger.selectors import ledger_verify
from payments.models import Payout, Refund
from payments.tests.services.conftest import paid
from payments.tests.test_money_concurrency_postgres import client_for, run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 15
ALLOWED = {(201, None), (409, "idempotency_key_in_use")}


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


def _race(client_factory, url: str, body: dict, key: str) -> list[tuple[int, str | None]]:
    answers: list[tuple[int, str | None]] = []

    def send(index: int) -> None:
        response = client_factory().post(
            url, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
        )
        answers.append((response.status_code, response.json().get("error", {}).get("code")))

    assert run_in_threads(2, send) == []
    return answers


def test_one_key_twice_at_once_for_a_payout_never_answers_the_losers_own_422(alice, mtn):
    seen: Counter[tuple[int, str | None]] = Counter()
    for round_ in range(ROUNDS):
        fund_tenant(alice.tenant, "UGX", "1000")  # enough for exactly one payout
        answers = _race(
            lambda: client_for(alice),
            "/api/v1/payouts",
            {"amount": 1000, "currency": "UGX", "payee": "256772123457"},
            f"payout-race-{round_}",
        )
        seen.update(answers)
        assert set(answers) <= ALLOWED, answers
        assert (201, None) in answers
        assert Payout.objects.count() == round_ + 1

    assert (422, "insufficient_funds") not in seen
    assert IdempotencyKey.objects.filter(response_status=422).count() == 0
    assert ledger_verify() == []


def test_one_key_twice_at_once_for_a_refund_never_answers_the_losers_own_422(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "1000000")
    seen: Counter[tuple[int, str | None]] = Counter()
    for round_ in range(ROUNDS):
        payment = paid(alice.tenant, amount="1000")
        answers = _race(
            lambda: client_for(alice),
            f"/api/v1/payments/{payment.pk}/refunds",
            {"amount": 1000},
            f"refund-race-{round_}",
        )
        seen.update(answers)
        assert set(answers) <= ALLOWED, answers
        assert (201, None) in answers
        assert Refund.objects.filter(payment=payment).count() == 1

    assert (422, "refund_exceeds_payment") not in seen
    assert IdempotencyKey.objects.filter(response_status=422).count() == 0
    assert ledger_verify() == []
