"""Account holders and the account (reference section 5): is a number an active MoMo
wallet, who holds it, and the balance of our own account. Both products answer these."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .scenarios import account_holder_answer, basic_user_info_answer
from .wire import Reply, bad_request

if TYPE_CHECKING:
    from .app import Sandbox

ID_TYPES = ("msisdn", "email", "party_code")


def route(sim: Sandbox, method: str, rest: list[str]) -> Reply | None:
    """``rest`` is the path after ``/{product}/v1_0``; None when it is not ours."""
    if method != "GET" or not rest:
        return None
    if rest[:2] == ["account", "balance"] and len(rest) <= 3:
        currency = rest[2] if len(rest) == 3 else (sim.config.currency or "EUR")
        return Reply(200, {"availableBalance": sim.config.balance, "currency": currency})
    if rest[0] == "accountholder" and len(rest) == 4:
        id_type, party_id, tail = rest[1:]
        if id_type not in ID_TYPES:
            # MTN wants the type "explicitly in small letters".
            return bad_request("Account holder type must be lower case.")
        if tail == "active":
            answer = account_holder_answer(party_id, sandbox=sim.state.is_sandbox)
            return Reply(answer.http_status, answer.body)
        if tail == "basicuserinfo" and id_type == "msisdn":
            answer = basic_user_info_answer(party_id, sandbox=sim.state.is_sandbox)
            return Reply(answer.http_status, answer.body)
    return None
