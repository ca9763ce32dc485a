"""MTN's callbacks end to end: the simulator calls a live gateway on both doors, with its
faults (duplicates, stale out-of-order callbacks, lost callbacks, PUT or POST)."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.models import AuditEvent
from payments.models import Payment, Payout
from shell.worker import Worker
from webhooks.models import MerchantDelivery, MtnCallback

from .conftest import create, make_due, wait_until

pytestmark = pytest.mark.e2e


def _settle(model, transfer_id, status="SUCCESSFUL"):
    return wait_until(lambda: model.objects.get(pk=transfer_id).status == status, timeout=10)


def _callbacks_done(count: int):
    def done() -> bool:
        rows = list(MtnCallback.objects.all())
        return len(rows) >= count and all(r.processed_at for r in rows)

    return wait_until(done, timeout=10)


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_signed_door_end_to_end(sim, shop, live_server, settings, method):
    settings.MTN_VERIFY_CALLBACKS = True
    sim.config.signed_callback_url = f"{live_server.url}/api/v1/webhooks/mtn"
    sim.config.callback_method = method

    payment_id = create(shop.client).json()["id"]

    assert _settle(Payment, payment_id)
    assert _callbacks_done(1)
    callback = MtnCallback.objects.get()
    assert callback.door == MtnCallback.Door.SIGNED
    assert callback.method == method
    assert callback.signature_valid is True
    assert callback.outcome == MtnCallback.Outcome.APPLIED
    assert callback.headers["X-Signature-256"].startswith("sha256=")
    # The simulator logs the callback once it has our answer.
    assert wait_until(lambda: sim.state.callback_log())
    assert [entry["status_code"] for entry in sim.state.callback_log()] == [200]


def test_duplicate_and_stale_callbacks_apply_once(sim_with_callbacks, shop, settings):
    sim_with_callbacks.set_faults(duplicate_callback_rate=1.0, out_of_order_rate=1.0)

    payment_id = create(shop.client).json()["id"]

    assert _settle(Payment, payment_id)
    assert _callbacks_done(3)
    outcomes = Counter(MtnCallback.objects.values_list("outcome", flat=True))
    # The final callback, its duplicate, and a stale PENDING one after them. The doors only
    # store callbacks: the stale one may arrive before the dispatcher applied the final one
    # (then it is "not_final" at once), or after (then "final_already"); it changes nothing.
    stale = outcomes.pop("final_already", 0) + outcomes.pop("not_final", 0)
    assert (outcomes, stale) == ({"applied": 1, "duplicate": 1}, 1)
    assert Payment.objects.get(pk=payment_id).status == "SUCCESSFUL"
    assert AuditEvent.objects.filter(action="payment.succeeded").count() == 1
    assert MerchantDelivery.objects.count() == 1


def test_lost_callback_is_made_up_for_by_polling(sim_with_callbacks, shop, settings):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    sim_with_callbacks.set_faults(lost_callback_rate=1.0)

    payment = Payment.objects.get(pk=create(shop.client).json()["id"])
    assert payment.status == "PENDING"
    make_due(payment)
    Worker().drain()

    payment.refresh_from_db()
    assert payment.status == "SUCCESSFUL"
    assert MtnCallback.objects.count() == 0
    assert MerchantDelivery.objects.count() == 1


def test_failed_payout_callback_with_reason_object(sim_with_callbacks, shop):
    sim_with_callbacks.config.reason_as_object = True

    payout_id = create(shop.client, kind="payout", party="46733123457").json()["id"]

    assert _settle(Payout, payout_id, "FAILED")
    shown = shop.client.get(f"/api/v1/payouts/{payout_id}").json()
    assert shown["failure_reason"]["code"] == "PAYEE_NOT_FOUND"
    assert shown["failure_reason"]["message"] == "The payee could not be found."
    assert _callbacks_done(1)
    assert MtnCallback.objects.get().object_type == "payout"


def test_delayed_success_arrives_by_callback_after_pending(sim_with_callbacks, shop):
    sim_with_callbacks.config.delay_seconds = 0.3

    payment_id = create(shop.client, party="46733123454").json()["id"]

    assert Payment.objects.get(pk=payment_id).status == "PENDING"
    assert _settle(Payment, payment_id)
    assert _callbacks_done(1)
    assert MtnCallback.objects.get().outcome == MtnCallback.Outcome.APPLIED
