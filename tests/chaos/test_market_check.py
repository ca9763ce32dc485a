"""The two-market run's own checks, on made-up records: they must find what is wrong.

Fast and without a stack (no PostgreSQL needed): each object must have reached the MTN of its
own account and no other, and the UGX orders must be whole shillings.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from types import SimpleNamespace

from tests.chaos.scenario import Outcome, check_mtn, expected_money, make_orders, make_refunds

MARKETS = {"EUR": "default", "UGX": "uganda"}


def _row(kind: str, ident: str, currency: str, account: str, status: str = "SUCCESSFUL") -> dict:
    return {
        "kind": kind,
        "id": ident,
        "ref": f"ref-{ident}",
        "status": status,
        "submission": "accepted",
        "failure_code": "",
        "needs_review": False,
        "mtn_account": account,
        "currency": currency,
    }


def _tx(row: dict, **changes: object) -> dict:
    tx = {
        "reference_id": row["ref"],
        "external_id": row["id"],
        "product": "collection" if row["kind"] == "payment" else "disbursement",
        "post_count": 1,
        "status": row["status"],
        "reason": None,
        "currency": row["currency"],
        "amount": "1000",
    }
    return {**tx, **changes}


EUR = _row("payment", "p1", "EUR", "default")
UGX = _row("payout", "p2", "UGX", "uganda")


def test_each_object_at_its_own_markets_mtn_passes():
    by_account = {"default": {EUR["ref"]: _tx(EUR)}, "uganda": {UGX["ref"]: _tx(UGX)}}

    assert check_mtn(transfers=[EUR, UGX], by_account=by_account, expected_account=MARKETS) == []


def test_an_object_also_sent_to_the_other_market_is_found():
    stray = _tx(UGX, reference_id="ref-again")
    by_account = {
        "default": {EUR["ref"]: _tx(EUR), "ref-again": stray},
        "uganda": {UGX["ref"]: _tx(UGX)},
    }

    problems = check_mtn(transfers=[EUR, UGX], by_account=by_account, expected_account=MARKETS)

    assert "MTN default holds 2 transactions for 1 objects" in problems
    assert "payout p2 reached 2 MTN transactions in all markets" in problems


def test_an_object_only_at_the_wrong_market_and_a_wrong_route_are_found():
    misrouted = {**UGX, "mtn_account": "default"}
    by_account = {"default": {EUR["ref"]: _tx(EUR), UGX["ref"]: _tx(UGX)}, "uganda": {}}

    problems = check_mtn(
        transfers=[EUR, misrouted], by_account=by_account, expected_account=MARKETS
    )

    assert problems == ["payout p2 in UGX went through 'default', not 'uganda'"]


def test_a_status_differing_from_its_own_markets_mtn_is_found():
    failed_at_mtn = _tx(UGX, status="FAILED", reason="APPROVAL_REJECTED")
    by_account = {"default": {EUR["ref"]: _tx(EUR)}, "uganda": {UGX["ref"]: failed_at_mtn}}

    problems = check_mtn(transfers=[EUR, UGX], by_account=by_account, expected_account=MARKETS)

    assert problems == ["payout p2 is SUCCESSFUL, MTN says FAILED"]


def test_money_is_expected_per_currency_from_both_markets_records():
    stack = SimpleNamespace(
        funding={"EUR": Decimal(100), "UGX": Decimal(10_000)},
        collection_fee_percent=Decimal("1.5"),
    )
    sim = {
        "a": {"product": "collection", "status": "SUCCESSFUL", "amount": "1001", "currency": "UGX"},
        "b": {
            "product": "collection",
            "status": "SUCCESSFUL",
            "amount": "10.00",
            "currency": "EUR",
        },
        "c": {
            "product": "disbursement",
            "status": "SUCCESSFUL",
            "amount": "500",
            "currency": "UGX",
        },
    }

    money = expected_money(stack, sim)

    # UGX has no minor unit: the fee on 1001 is 15.015, rounded to 15.
    assert money.total == Counter({"EUR": Decimal("109.85"), "UGX": Decimal(10_486)})
    assert money.fees == Counter({"EUR": Decimal("0.15"), "UGX": Decimal(15)})


def test_ugx_orders_and_their_partial_refunds_are_whole_shillings():
    orders = make_orders(60, seed=1, run="t", ugx_share=0.5)
    ugx = [order for order in orders if order.currency == "UGX"]
    outcomes = [Outcome(order, transfer_id=f"id-{order.index}") for order in ugx]
    state = SimpleNamespace(
        transfers=[{"id": o.transfer_id, "status": "SUCCESSFUL"} for o in outcomes]
    )

    refunds = make_refunds(state, orders, outcomes, every=1, run="t")

    assert 10 < len(ugx) < 50
    assert all(order.amount.isdigit() for order in ugx)
    partial = [refund for refund in refunds if refund.amount]
    assert partial
    assert all(refund.amount.isdigit() for refund in partial)
    assert all(refund.currency == "UGX" for refund in refunds)


def test_without_a_ugx_share_every_order_stays_in_eur():
    assert {order.currency for order in make_orders(60, seed=1, run="t")} == {"EUR"}
