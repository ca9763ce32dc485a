"""The gateway against the simulator where it behaves as MTN does and a looser one would hide
a mistake (issue 20): the callback-host rule, answers without a financialTransactionId, and
callbacks by POST (MTN's page) or PUT (v2) on both doors."""

from __future__ import annotations

import pytest

from payments.models import Payment, Payout
from shell.worker import Worker
from webhooks.models import MtnCallback

from .conftest import create, make_due, wait_until

pytestmark = pytest.mark.e2e

MODELS = {"payment": Payment, "payout": Payout}


def _created(response, kind: str = "payment"):
    assert response.status_code == 201, response.content
    return MODELS[kind].objects.get(pk=response.json()["id"])


def _settled(model, pk, status: str) -> bool:
    def done() -> bool:
        if model.objects.get(pk=pk).status == "PENDING":
            make_due(model.objects.get(pk=pk))  # poll now rather than in a minute
        Worker().drain()  # submits (when creates no longer call MTN) and polls what is due
        return model.objects.get(pk=pk).status == status

    return wait_until(done, timeout=10)


def test_a_callback_url_on_another_host_than_mtns_user_fails_and_mtn_creates_nothing(
    sim, shop, settings
):
    # The gateway says "call me back at 127.0.0.1"; MTN's API user was registered with the
    # live server's host ("localhost"). MTN answers 500 INVALID_CALLBACK_URL_HOST.
    assert sim.config.provider_callback_host == "localhost"
    settings.MTN_CALLBACK_URL = "http://127.0.0.1:8000"

    payment = _created(create(shop.client))

    assert _settled(Payment, payment.pk, "FAILED")
    payment.refresh_from_db()
    assert payment.failure_code == "INVALID_CALLBACK_URL_HOST"
    assert sim.state.all_transactions() == []
    refused = [r for r in sim.state.request_log() if r["path"].endswith("/requesttopay")]
    assert refused
    assert {r["status"] for r in refused} == {500}
    assert {r["headers"]["X-Callback-Url"].split("/")[2] for r in refused} == {"127.0.0.1:8000"}


@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_a_failed_answer_without_financial_transaction_id_settles_failed(sim, shop, kind):
    transfer = _created(create(shop.client, party="46733123450", kind=kind), kind)

    assert _settled(MODELS[kind], transfer.pk, "FAILED")
    transfer.refresh_from_db()
    assert transfer.mtn_financial_transaction_id in ("", None)
    [mtn_tx] = sim.state.all_transactions()
    assert mtn_tx["financial_transaction_id"] is None


@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_a_successful_answer_without_financial_transaction_id_settles_successful(sim, shop, kind):
    # 46733123490: SUCCESSFUL with no financialTransactionId, as MTN's notebook's deposit.
    transfer = _created(create(shop.client, party="46733123490", kind=kind), kind)

    assert _settled(MODELS[kind], transfer.pk, "SUCCESSFUL")
    transfer.refresh_from_db()
    assert transfer.mtn_financial_transaction_id in ("", None)
    shown = shop.client.get(f"/api/v1/{kind}s/{transfer.pk}").json()
    assert shown["status"] == "SUCCESSFUL"


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_the_token_door_takes_callbacks_by_post_and_put(sim_with_callbacks, shop, method):
    sim_with_callbacks.config.callback_method = method

    payment = _created(create(shop.client))

    def callback_processed() -> bool:
        # The worker submits (once creates no longer call MTN) and works the stored callback;
        # no poll is made due, so MTN's callback, not a poll, is what settles the payment.
        Worker().drain()
        return MtnCallback.objects.filter(processed_at__isnull=False).exists()

    assert wait_until(callback_processed)
    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"
    callback = MtnCallback.objects.get()
    assert (callback.door, callback.method) == (MtnCallback.Door.TOKEN, method)
    assert callback.outcome == MtnCallback.Outcome.APPLIED
    assert [c["method"] for c in sim_with_callbacks.state.callback_log()] == [method]


def test_callbacks_are_post_by_default(sim):
    assert sim.config.callback_method == "POST"
