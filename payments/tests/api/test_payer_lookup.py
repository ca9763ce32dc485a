"""GET /api/v1/payers/{msisdn}?currency=: MTN's accountholder active + basicuserinfo."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import responses

from conftest import mtn_calls
from gateway.audit import Actor
from gateway.metrics import REGISTRY
from gateway.models import AuditEvent
from mtn.accounts import mtn_account_set
from mtn.sandbox import SandboxConfig, SandboxHandle, start_sandbox
from mtn.sandbox.scenarios import INACTIVE_HOLDER, UNKNOWN_HOLDER, holder_name

NUMBER = "256772123456"
ACTIVE = "/collection/v1_0/accountholder/msisdn/256772123456/active"
INFO = "/collection/v1_0/accountholder/msisdn/256772123456/basicuserinfo"
# MTN's basicuserinfo carries more personal data than the name; none of it may come out.
MTN_USER_INFO = {
    "given_name": "John",
    "family_name": "Doe",
    "name": "John Doe",
    "birthdate": "1976-08-13",
    "locale": "sv_SE",
    "gender": "MALE",
    "sub": "1234567",
    "updated_at": 1700000000,
}


def lookups() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="payer.looked_up"))


@pytest.fixture
def holder(mtn) -> responses.RequestsMock:
    base = "https://mtn.test"
    mtn.get(f"{base}{ACTIVE}", json={"result": True})
    mtn.get(f"{base}{INFO}", json=MTN_USER_INFO)
    return mtn


def test_an_active_number_answers_its_holders_name_and_nothing_else(api_client, holder):
    response = api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")
    assert response.status_code == 200
    assert response.json() == {"msisdn": NUMBER, "active": True, "name": "John Doe"}
    assert "1976" not in response.content.decode()
    call = mtn_calls(holder, "accountholder")[0]
    assert call.request.headers["X-Target-Environment"] == "sandbox"
    assert call.request.headers["Authorization"] == "Bearer token-collection"


def test_a_leading_plus_is_accepted_and_dropped(api_client, holder):
    response = api_client.get(f"/api/v1/payers/+{NUMBER}?currency=UGX")
    assert response.json()["msisdn"] == NUMBER


def test_a_number_mtn_does_not_know_is_inactive_without_a_name(api_client, mtn):
    mtn.get(
        f"https://mtn.test{ACTIVE}",
        status=404,
        json={"code": "RESOURCE_NOT_FOUND", "message": "Requested resource was not found."},
    )
    response = api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")
    assert response.status_code == 200
    assert response.json() == {"msisdn": NUMBER, "active": False, "name": None}
    assert not mtn_calls(mtn, "basicuserinfo")


def test_an_inactive_wallet_is_not_asked_for_a_name(api_client, mtn):
    mtn.get(f"https://mtn.test{ACTIVE}", json={"result": False})
    response = api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")
    assert response.json() == {"msisdn": NUMBER, "active": False, "name": None}
    assert not mtn_calls(mtn, "basicuserinfo")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/api/v1/payers/{NUMBER}", "currency"),
        (f"/api/v1/payers/{NUMBER}?currency=ugx", "currency"),
        (f"/api/v1/payers/{NUMBER}?currency=UGX&currency=EUR", "currency"),
        ("/api/v1/payers/12345?currency=UGX", "msisdn"),
        ("/api/v1/payers/2567721234567890?currency=UGX", "msisdn"),
        ("/api/v1/payers/25677212345a?currency=UGX", "msisdn"),
        (f"/api/v1/payers/{NUMBER}?currency=UGX&verbose=1", "verbose"),
    ],
)
def test_malformed_look_ups_are_400_and_ask_mtn_nothing(api_client, mtn, path, field):
    response = api_client.get(path)
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert field in body["fields"]
    assert not mtn.calls
    assert lookups() == []


def test_look_ups_need_an_api_key(client, mtn, db):
    response = client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")
    assert response.status_code == 401
    assert not mtn.calls


def test_look_ups_have_their_own_rate_limit(api_client, holder, settings):
    settings.PAYER_LOOKUP_RATE_LIMIT = "2/h"
    for _ in range(2):
        assert api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX").status_code == 200
    calls_before = len(holder.calls)
    response = api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert len(holder.calls) == calls_before
    assert len(lookups()) == 2
    # The key's other requests are not counted against look-ups, nor limited by them.
    assert api_client.get("/api/v1/payments").status_code == 200


def test_each_look_up_is_audited_with_the_number_masked(api_client, holder, alice):
    api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")
    (event,) = lookups()
    assert event.tenant_id == alice.tenant.pk
    assert event.actor_id == alice.api_key[:12]
    assert event.data["msisdn"] == "*********456"
    assert event.data["account"] == "default"
    assert NUMBER not in json.dumps(event.data)
    assert NUMBER not in event.object_id
    assert "John" not in json.dumps(event.data)


def test_past_the_processs_share_a_look_up_is_503_mtn_busy_and_asks_nobody(
    api_client, holder, settings
):
    from gateway.shares import share_slot

    settings.PAYER_LOOKUP_SLOTS = 1
    with share_slot("PAYER_LOOKUP_SLOTS") as taken:  # another look-up is waiting on MTN
        assert taken
        busy = api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")

    assert busy.status_code == 503
    assert busy.json()["error"]["code"] == "mtn_busy"
    assert int(busy["Retry-After"]) >= 1
    assert mtn_calls(holder, "accountholder") == []
    assert lookups() == []
    # The slot is free again: the next look-up is answered.
    assert api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX").status_code == 200


def test_a_look_up_waits_for_its_accounts_limits_and_is_503_past_them(
    api_client, holder, settings, monkeypatch
):
    from mtn.accounts import default_account
    from mtn.limits import account_limits, permit_try_acquire
    from payments import payers

    monkeypatch.setattr(payers, "PERMIT_WAIT_SECONDS", 0.05)
    settings.MTN_MAX_IN_FLIGHT = 1
    taken = permit_try_acquire("default", account_limits(default_account()))  # a call in flight
    assert taken is not None
    try:
        busy = api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")
    finally:
        taken.release()

    assert busy.status_code == 503
    assert busy.json()["error"]["code"] == "mtn_busy"
    assert mtn_calls(holder, "accountholder") == []
    assert lookups()[0].data["outcome"] == "busy"


def test_mtn_down_is_a_502_never_an_answer(api_client, mtn):
    mtn.get(f"https://mtn.test{ACTIVE}", status=503, json={"code": "SERVICE_UNAVAILABLE"})
    response = api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "mtn_unavailable"
    assert lookups()[0].data["outcome"] == "failed:SERVICE_UNAVAILABLE"


def test_the_look_up_goes_through_the_tenants_own_account_for_the_currency(
    api_client, mtn, alice, bob
):
    mtn_account_set(
        name="alice-ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={
            "collection": {
                "subscription_key": "alice-sub",
                "api_user": "0b3f8a56-9f0e-4b8e-9a55-2f1d3c4b5a6e",
                "api_key": "alice-key",
            }
        },
        base_url="https://alice-mtn.test",
        tenant_slug="alice",
        actor=Actor.system(),
    )
    mtn.post("https://alice-mtn.test/collection/token/", json={"access_token": "alice-token"})
    mtn.get(f"https://alice-mtn.test{ACTIVE}", json={"result": True})
    mtn.get(f"https://alice-mtn.test{INFO}", json=MTN_USER_INFO)
    mtn.get(f"https://mtn.test{ACTIVE}", json={"result": True})
    mtn.get(f"https://mtn.test{INFO}", json=MTN_USER_INFO)

    assert api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX").status_code == 200
    (call,) = mtn_calls(mtn, "alice-mtn.test.*active")
    assert call.request.headers["X-Target-Environment"] == "mtnuganda"
    assert call.request.headers["Ocp-Apim-Subscription-Key"] == "alice-sub"
    assert call.request.headers["Authorization"] == "Bearer alice-token"
    assert not mtn_calls(mtn, r"//mtn\.test/collection/v1_0/accountholder")

    # Bob has no account of his own: the platform's default.
    assert bob.client.get(f"/api/v1/payers/{NUMBER}?currency=UGX").status_code == 200
    assert len(mtn_calls(mtn, r"//mtn\.test/collection/v1_0/accountholder.*active")) == 1
    assert [event.data["account"] for event in lookups()] == ["alice-ug", "default"]


# --- against the simulator -----------------------------------------------------------------


@pytest.fixture
def uganda(settings) -> Iterator[SandboxHandle]:
    handle = start_sandbox(SandboxConfig(target_environment="mtnuganda", delay_seconds=0.3))
    settings.MTN_SUBMIT_MAX_TRIES = 1
    mtn_account_set(
        name="ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={
            "collection": {
                "subscription_key": settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
                "api_user": settings.MTN_COLLECTION_API_USER,
                "api_key": settings.MTN_COLLECTION_API_KEY,
            }
        },
        base_url=handle.base_url,
        actor=Actor.system(),
    )
    yield handle
    handle.stop()


@pytest.fixture
def eur_sandbox(settings) -> Iterator[SandboxHandle]:
    """MTN's sandbox (EUR), the platform's default account: its test numbers exist only
    there, not in a production market such as mtnuganda."""
    handle = start_sandbox(SandboxConfig(target_environment="sandbox", delay_seconds=0.3))
    settings.MTN_BASE_URL = handle.base_url
    settings.MTN_TARGET_ENVIRONMENT = "sandbox"
    settings.MTN_SUBMIT_MAX_TRIES = 1
    yield handle
    handle.stop()


@pytest.mark.e2e
def test_simulator_active_number_answers_its_holders_name(api_client, uganda):
    given, family = holder_name(NUMBER)
    response = api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX")
    assert response.status_code == 200
    assert response.json() == {"msisdn": NUMBER, "active": True, "name": f"{given} {family}"}
    assert lookups()[0].data["account"] == "ug"


@pytest.mark.e2e
@pytest.mark.parametrize("number", [UNKNOWN_HOLDER, INACTIVE_HOLDER])
def test_simulator_unknown_and_inactive_numbers_are_inactive_without_name(
    api_client, eur_sandbox, number
):
    response = api_client.get(f"/api/v1/payers/{number}?currency=EUR")
    assert response.json() == {"msisdn": number, "active": False, "name": None}


@pytest.mark.e2e
def test_simulator_refusing_the_gateways_account_is_a_502(api_client, eur_sandbox):
    response = api_client.get("/api/v1/payers/46733123453?currency=EUR")
    assert response.status_code == 502
    assert lookups()[0].data["outcome"] == "refused:NOT_ALLOWED_TARGET_ENVIRONMENT"
    # Retrying cannot help until an operator fixes the account: the message does not invite it.
    message = response.json()["error"]["message"]
    assert "shortly" not in message
    assert "retrying will not help" in message


def test_with_redis_down_look_ups_go_through_past_their_limit(
    api_client, holder, settings, dead_redis
):
    settings.PAYER_LOOKUP_RATE_LIMIT = "1/h"
    before = (
        REGISTRY.get_sample_value("momo_rate_limit_fail_open_total", {"scope": "payer_lookup"})
        or 0.0
    )

    responses_ = [api_client.get(f"/api/v1/payers/{NUMBER}?currency=UGX") for _ in range(3)]

    assert [r.status_code for r in responses_] == [200, 200, 200]
    assert len(lookups()) == 3
    after = REGISTRY.get_sample_value("momo_rate_limit_fail_open_total", {"scope": "payer_lookup"})
    assert after - before == 3
