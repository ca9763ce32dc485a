"""The chaos runs' money check itself, on made-up records: it must find what is wrong.

Fast and without a stack (no PostgreSQL needed): a check that could not fail would prove
nothing in the chaos runs.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from types import SimpleNamespace

from tests.chaos.scenario import check_money, expected_money


def _tx(product: str, status: str, amount: str, currency: str = "EUR") -> dict:
    return {"product": product, "status": status, "amount": amount, "currency": currency}


SIM = {
    "a": _tx("collection", "SUCCESSFUL", "100.01"),  # fee 1.5 % = 1.50015 -> 1.50
    "b": _tx("collection", "SUCCESSFUL", "0.99"),  # fee 0.01485 -> 0.01
    "c": _tx("collection", "FAILED", "50.00"),
    "d": _tx("disbursement", "SUCCESSFUL", "10.00"),  # a payout paid
    "e": _tx("disbursement", "FAILED", "7.00"),  # a payout given back
    "f": _tx("disbursement", "PENDING", "5.00"),  # a refund in flight: reserved
}


class _Stack(SimpleNamespace):
    def ledger_check(self) -> dict:
        return self.ledger


class _Db:
    def __init__(self, tenant: list[dict], fees: list[dict]) -> None:
        self.tenant, self.fees = tenant, fees

    def rows(self, sql: str, params: tuple = ()) -> list[dict]:
        return self.fees if "'fees'" in sql else self.tenant


def _stack(*, available: str, reserved: str, fees: str, ledger: dict | None = None) -> _Stack:
    return _Stack(
        tenant="chaos",
        funding={"EUR": Decimal(1000)},
        collection_fee_percent=Decimal("1.5"),
        ledger=ledger or {"ok": True, "transactions": 9, "problems": []},
        db=_Db(
            [
                {"currency": "EUR", "kind": "available", "balance": Decimal(available)},
                {"currency": "EUR", "kind": "reserved", "balance": Decimal(reserved)},
            ],
            [{"currency": "EUR", "balance": Decimal(fees)}],
        ),
    )


def test_expected_money_is_funding_plus_net_collections_less_payouts_with_pending_reserved():
    money = expected_money(_stack(available="0", reserved="0", fees="0"), SIM)

    # 1000 + (100.01 - 1.50) + (0.99 - 0.01) - 10.00; the pending 5.00 is still held.
    assert money.total == Counter({"EUR": Decimal("1089.49")})
    assert money.reserved == Counter({"EUR": Decimal("5.00")})
    assert money.fees == Counter({"EUR": Decimal("1.51")})


def test_money_check_passes_when_the_ledger_holds_what_mtn_says():
    stack = _stack(available="1084.49", reserved="5.00", fees="1.51")

    assert check_money(stack, SIM) == []


def test_money_check_finds_a_cent_missing_a_wrong_reservation_and_wrong_fees():
    stack = _stack(available="1084.48", reserved="4.00", fees="1.52")

    problems = check_money(stack, SIM)

    assert len(problems) == 3
    assert "should be 1089.49 (off by -1.01)" in problems[0]
    assert "4.00 reserved, but MTN has 5.00" in problems[1]
    assert "fees are 1.52, by MTN's record 1.51" in problems[2]


def test_money_check_reports_what_ledger_check_found():
    ledger = {"ok": False, "transactions": 9, "problems": ["account 3: negative balance -1"]}
    stack = _stack(available="1084.49", reserved="5.00", fees="1.51", ledger=ledger)

    assert check_money(stack, SIM) == ["ledger_check: account 3: negative balance -1"]
