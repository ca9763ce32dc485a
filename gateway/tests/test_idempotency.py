"""Idempotency keys, through the API (payments) and the module's own functions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.conf import settings as django_settings
from django.utils import timezone

from conftest import dispatch, mtn_calls
from gateway.audit import Actor
from gateway.idempotency import (
    idempotency_keys_purge,
    read_idempotency_key,
    request_fingerprint,
)
from gateway.models import IdempotencyKey
from payments import services
from payments.models import Payment
from payments.representation import transfer_representation
from payments.states import Status
from payments.tests.helpers import (
    PAYMENTS_URL,
    REQUESTTOPAY_URL,
    assert_error,
    assert_nothing_created,
    assert_validation_error,
    payment_body,
    post_json,
    transfer_events_count,
)

pytestmark = pytest.mark.django_db

BODY = {"amount": 1000, "currency": "UGX", "payer": "256700000000", "reference": "order-42"}


def requests_to_pay(mtn_http) -> int:
    return len(mtn_calls(mtn_http, "requesttopay"))


def claimed_key(tenant, key, *, body=BODY, locked_at=None, resource_id=None, **fields):
    """A key claimed by a request that is still running (or died), as the database holds it."""
    now = timezone.now()
    return IdempotencyKey.objects.create(
        tenant=tenant,
        key=key,
        fingerprint=request_fingerprint(method="POST", path=PAYMENTS_URL, data=body),
        locked_at=now if locked_at is None else locked_at,
        expires_at=now + timedelta(hours=24),
        resource_type="payment" if resource_id else "",
        resource_id=resource_id,
        **fields,
    )


def stale() -> timezone.datetime:
    return timezone.now() - timedelta(seconds=django_settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS + 1)


# --- replay ---------------------------------------------------------------------------------


def test_replay_gives_the_same_status_and_body_and_creates_nothing_new(alice, mtn_http):
    first = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1")
    events_after_first = transfer_events_count()

    again = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Payment.objects.count() == 1
    assert transfer_events_count() == events_after_first
    assert requests_to_pay(mtn_http) == 0  # a create stores; the dispatcher sends
    dispatch()
    assert requests_to_pay(mtn_http) == 1
    assert IdempotencyKey.objects.count() == 1


def test_replay_returns_the_stored_answer_even_after_the_payment_changed(alice, mtn_http):
    first = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1")
    services.transfer_transition(
        transfer=Payment.objects.get(), target=Status.SUCCESSFUL, actor=Actor.mtn()
    )

    again = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1")

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["status"] == "PENDING"


def test_replay_of_a_failed_create_replays_the_failure(alice, mtn_http):
    # With Prefer: wait the create answers MTN's refusal: FAILED.
    mtn_http.replace(responses.POST, REQUESTTOPAY_URL, status=500, json={"code": "NOT_ALLOWED"})
    first = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1", HTTP_PREFER="wait=5")

    again = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1", HTTP_PREFER="wait=5")

    assert first.json()["status"] == "FAILED"
    assert first["Preference-Applied"] == "wait=5"
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert requests_to_pay(mtn_http) == 1
    dispatch()
    assert requests_to_pay(mtn_http) == 1


@pytest.mark.parametrize(
    "raw",
    [
        '{"reference": "order-42", "payer": "256700000000", "currency": "UGX", "amount": 1000}',
        '{ "amount" : 1000 ,\n  "currency":"UGX",\t"payer": "256700000000",'
        '  "reference":"order-42" }',
    ],
    ids=["keys-reordered", "whitespace"],
)
def test_the_same_body_written_differently_is_a_replay(alice, mtn_http, raw):
    first = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1")

    again = post_json(alice.client, PAYMENTS_URL, raw, key="k-1")

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Payment.objects.count() == 1
    assert requests_to_pay(mtn_http) == 0  # a create stores; the dispatcher sends
    dispatch()
    assert requests_to_pay(mtn_http) == 1


@pytest.mark.parametrize(
    "changed",
    [
        {**BODY, "amount": 1001},
        {**BODY, "amount": "1000"},
        {**BODY, "reference": "order-43"},
        {key: value for key, value in BODY.items() if key != "reference"},
        {**BODY, "description": "extra"},
    ],
    ids=["amount", "amount-as-string", "reference", "field-removed", "field-added"],
)
def test_repeat_with_other_body_is_422_and_creates_nothing(alice, mtn_http, changed):
    first = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1")
    row_before = IdempotencyKey.objects.values().get()
    events_before = transfer_events_count()

    response = post_json(alice.client, PAYMENTS_URL, changed, key="k-1")

    assert_error(response, 422, "idempotency_key_reused")
    assert not response.has_header("Idempotent-Replayed")
    assert Payment.objects.count() == 1
    assert transfer_events_count() == events_before
    assert IdempotencyKey.objects.values().get() == row_before
    assert requests_to_pay(mtn_http) == 0  # a create stores; the dispatcher sends
    dispatch()
    assert requests_to_pay(mtn_http) == 1
    # The key still replays its first answer.
    assert post_json(alice.client, PAYMENTS_URL, BODY, key="k-1").json() == first.json()


def test_an_invalid_body_on_a_used_key_is_422_not_400(alice, mtn_http):
    post_json(alice.client, PAYMENTS_URL, BODY, key="k-1")

    response = post_json(alice.client, PAYMENTS_URL, {**BODY, "amount": "abc"}, key="k-1")

    assert_error(response, 422, "idempotency_key_reused")
    assert Payment.objects.count() == 1


def test_keys_are_scoped_to_the_tenant(alice, bob, mtn_http):
    from_alice = post_json(alice.client, PAYMENTS_URL, BODY, key="shared-key")
    from_bob = post_json(bob.client, PAYMENTS_URL, BODY, key="shared-key")

    assert from_alice.status_code == from_bob.status_code == 201
    assert not from_bob.has_header("Idempotent-Replayed")
    assert from_alice.json()["id"] != from_bob.json()["id"]
    assert Payment.objects.filter(tenant=alice.tenant).count() == 1
    assert Payment.objects.filter(tenant=bob.tenant).count() == 1
    assert requests_to_pay(mtn_http) == 0  # a create stores; the dispatcher sends
    dispatch()
    assert requests_to_pay(mtn_http) == 2
    assert IdempotencyKey.objects.filter(key="shared-key").count() == 2
    replay = post_json(alice.client, PAYMENTS_URL, BODY, key="shared-key")
    assert replay.json()["id"] == from_alice.json()["id"]


def test_a_key_used_by_another_tenant_with_another_body_is_no_conflict(alice, bob, mtn_http):
    post_json(alice.client, PAYMENTS_URL, BODY, key="shared-key")

    response = post_json(bob.client, PAYMENTS_URL, {**BODY, "amount": 5}, key="shared-key")

    assert response.status_code == 201
    assert response.json()["amount"] == "5"


def test_a_validation_failure_stores_nothing_and_the_key_can_be_used_again(alice, mtn_http):
    rejected = post_json(alice.client, PAYMENTS_URL, {**BODY, "amount": "10.5"}, key="k-1")

    assert_validation_error(rejected, "amount")
    assert_nothing_created(mtn_http)

    accepted = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1")

    assert accepted.status_code == 201
    assert not accepted.has_header("Idempotent-Replayed")
    assert Payment.objects.count() == 1


def test_a_malformed_body_stores_nothing(alice, mtn_http):
    assert_error(post_json(alice.client, PAYMENTS_URL, "{", key="k-1"), 400, "malformed_json")
    assert_nothing_created(mtn_http)

    assert post_json(alice.client, PAYMENTS_URL, BODY, key="k-1").status_code == 201


# --- in progress, crashed, expired ----------------------------------------------------------


def test_a_key_still_in_progress_is_409_and_creates_nothing(alice, mtn_http):
    row = claimed_key(alice.tenant, "busy")

    response = post_json(alice.client, PAYMENTS_URL, BODY, key="busy")

    assert_error(response, 409, "idempotency_key_in_use")
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= django_settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS + 1
    assert Payment.objects.count() == 0
    assert requests_to_pay(mtn_http) == 0
    assert transfer_events_count() == 0
    row.refresh_from_db()
    assert row.state == IdempotencyKey.State.IN_PROGRESS
    assert IdempotencyKey.objects.count() == 1


def test_a_key_in_progress_with_another_body_is_422(alice, mtn_http):
    claimed_key(alice.tenant, "busy")

    response = post_json(alice.client, PAYMENTS_URL, {**BODY, "amount": 5}, key="busy")

    assert_error(response, 422, "idempotency_key_reused")
    assert Payment.objects.count() == 0
    assert requests_to_pay(mtn_http) == 0


def test_a_key_locked_just_under_the_timeout_is_still_409(alice, mtn_http):
    almost = timezone.now() - timedelta(
        seconds=django_settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS - 5
    )
    claimed_key(alice.tenant, "busy", locked_at=almost)

    response = post_json(alice.client, PAYMENTS_URL, BODY, key="busy")

    assert_error(response, 409, "idempotency_key_in_use")
    assert Payment.objects.count() == 0


def test_a_stale_key_whose_payment_exists_answers_201_with_its_current_state(alice, mtn_http):
    row = claimed_key(alice.tenant, "crashed")
    payment = services.transfer_create(
        model=Payment,
        tenant=alice.tenant,
        actor=Actor.api_key(alice.api_key[:12]),
        amount=Decimal("1000"),
        currency="UGX",
        party="256700000000",
        reference="order-42",
        idempotency_claim=row,
    )
    services.transfer_transition(transfer=payment, target=Status.SUCCESSFUL, actor=Actor.mtn())
    IdempotencyKey.objects.filter(pk=row.pk).update(locked_at=stale())
    payment.refresh_from_db()

    response = post_json(alice.client, PAYMENTS_URL, BODY, key="crashed")

    assert response.status_code == 201
    assert response.json() == transfer_representation(payment)
    assert response.json()["status"] == "SUCCESSFUL"
    assert Payment.objects.count() == 1
    assert requests_to_pay(mtn_http) == 0
    row.refresh_from_db()
    assert row.state == IdempotencyKey.State.COMPLETED
    assert row.response_body == response.json()
    # From now on the key replays that answer.
    assert post_json(alice.client, PAYMENTS_URL, BODY, key="crashed").json() == response.json()


def test_a_stale_key_whose_payment_exists_with_another_body_is_422(alice, mtn_http):
    row = claimed_key(alice.tenant, "crashed", locked_at=stale())
    payment = services.transfer_create(
        model=Payment,
        tenant=alice.tenant,
        actor=Actor.system(),
        amount=Decimal("1000"),
        currency="UGX",
        party="256700000000",
        idempotency_claim=row,
    )

    response = post_json(alice.client, PAYMENTS_URL, {**BODY, "amount": 7}, key="crashed")

    assert_error(response, 422, "idempotency_key_reused")
    assert list(Payment.objects.values_list("pk", flat=True)) == [payment.pk]


def test_a_stale_key_that_created_nothing_runs_afresh(alice, mtn_http):
    row = claimed_key(alice.tenant, "crashed", locked_at=stale())

    response = post_json(alice.client, PAYMENTS_URL, BODY, key="crashed")

    assert response.status_code == 201
    assert not response.has_header("Idempotent-Replayed")
    assert Payment.objects.count() == 1
    assert requests_to_pay(mtn_http) == 0  # a create stores; the dispatcher sends
    dispatch()
    assert requests_to_pay(mtn_http) == 1
    row.refresh_from_db()
    assert row.state == IdempotencyKey.State.COMPLETED
    assert str(row.resource_id) == response.json()["id"]
    assert IdempotencyKey.objects.count() == 1


def test_a_stale_key_that_created_nothing_and_now_fails_validation_stores_nothing(
    alice, mtn_http, settings
):
    claimed_key(alice.tenant, "crashed", locked_at=stale())
    settings.PAYMENT_MAX_AMOUNT = Decimal("10")

    response = post_json(alice.client, PAYMENTS_URL, BODY, key="crashed")

    assert_validation_error(response, "amount")
    assert_nothing_created(mtn_http)


def test_an_expired_key_is_treated_as_new(alice, mtn_http):
    past = timezone.now() - timedelta(seconds=1)
    claimed_key(
        alice.tenant,
        "old",
        body={"something": "else"},
        state=IdempotencyKey.State.COMPLETED,
        response_status=201,
        response_body={"id": "old"},
        locked_at=past,
    )
    IdempotencyKey.objects.filter(key="old").update(expires_at=past)

    response = post_json(alice.client, PAYMENTS_URL, BODY, key="old")

    assert response.status_code == 201
    assert not response.has_header("Idempotent-Replayed")
    assert response.json()["id"] != "old"
    assert Payment.objects.count() == 1
    row = IdempotencyKey.objects.get()
    assert row.expires_at > timezone.now() + timedelta(hours=23)
    assert str(row.resource_id) == response.json()["id"]


# --- the header -----------------------------------------------------------------------------


def test_a_quoted_key_is_the_same_key(alice, mtn_http):
    first = post_json(alice.client, PAYMENTS_URL, BODY, key='"abc"')

    again = post_json(alice.client, PAYMENTS_URL, BODY, key="abc")

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert IdempotencyKey.objects.get().key == "abc"


def test_a_key_of_255_printable_characters_is_accepted(alice, mtn_http):
    key = ("A-z0~ !" * 40)[:255]

    response = post_json(alice.client, PAYMENTS_URL, BODY, key=key)

    assert response.status_code == 201
    assert IdempotencyKey.objects.get().key == key


@pytest.mark.parametrize(
    "key",
    ["k" * 256, "tab\there", "bell\x07", "del\x7f", "nul\x00", "caf\u00e9", "snow\u2603", '""'],
    ids=["256-chars", "tab", "bell", "del", "nul", "latin-1", "non-latin", "quoted-empty"],
)
def test_an_invalid_key_is_400_and_creates_nothing(alice, mtn_http, key):
    response = post_json(alice.client, PAYMENTS_URL, BODY, key=key)

    fields = assert_validation_error(response, "Idempotency-Key")
    assert "255" in fields["Idempotency-Key"][0]
    assert_nothing_created(mtn_http)


def test_read_idempotency_key_unit():
    assert read_idempotency_key({"Idempotency-Key": "abc"}) == "abc"
    assert read_idempotency_key({"Idempotency-Key": '"abc"'}) == "abc"
    assert read_idempotency_key({"Idempotency-Key": '"'}) == '"'
    assert read_idempotency_key({"Idempotency-Key": "k" * 255}) == "k" * 255
    assert read_idempotency_key({"Idempotency-Key": '"' + "k" * 255 + '"'}) == "k" * 255


def test_fingerprint_ignores_key_order_but_not_values_method_or_path():
    one = request_fingerprint(method="POST", path=PAYMENTS_URL, data={"a": 1, "b": [1, 2]})

    assert one == request_fingerprint(method="post", path=PAYMENTS_URL, data={"b": [1, 2], "a": 1})
    assert one != request_fingerprint(method="POST", path=PAYMENTS_URL, data={"a": 1, "b": [2, 1]})
    assert one != request_fingerprint(
        method="POST", path=PAYMENTS_URL, data={"a": "1", "b": [1, 2]}
    )
    assert one != request_fingerprint(
        method="POST", path="/api/v1/payouts", data={"a": 1, "b": [1, 2]}
    )


# --- purge ----------------------------------------------------------------------------------


def test_purge_deletes_only_expired_keys(alice, bob):
    now = timezone.now()
    for index, expires_at in enumerate(
        [now - timedelta(days=2), now - timedelta(seconds=1), now + timedelta(seconds=30)]
    ):
        IdempotencyKey.objects.create(
            tenant=alice.tenant,
            key=f"k{index}",
            fingerprint="f",
            expires_at=expires_at,
            state=IdempotencyKey.State.COMPLETED,
        )
    IdempotencyKey.objects.create(
        tenant=bob.tenant, key="k0", fingerprint="f", expires_at=now + timedelta(hours=1)
    )

    assert idempotency_keys_purge() == 2

    remaining = set(IdempotencyKey.objects.values_list("tenant__slug", "key"))
    assert remaining == {("alice", "k2"), ("bob", "k0")}
    assert idempotency_keys_purge() == 0


def test_purge_works_in_batches(alice):
    past = timezone.now() - timedelta(minutes=1)
    IdempotencyKey.objects.bulk_create(
        IdempotencyKey(tenant=alice.tenant, key=f"k{i}", fingerprint="f", expires_at=past)
        for i in range(7)
    )

    assert idempotency_keys_purge(batch_size=3) == 7
    assert IdempotencyKey.objects.count() == 0


def test_a_purged_key_can_be_used_again(alice, mtn_http):
    first = post_json(alice.client, PAYMENTS_URL, BODY, key="k-1")
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    idempotency_keys_purge()

    again = post_json(alice.client, PAYMENTS_URL, payment_body(amount=5), key="k-1")

    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert Payment.objects.count() == 2
