"""GET /api/v1/payments: newest first, cursor pagination, filters, tenant scoping."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from gateway.audit import Actor
from payments import services
from payments.models import Payment
from payments.states import Status
from payments.tests.helpers import PAYMENTS_URL, assert_error, assert_validation_error

pytestmark = pytest.mark.django_db

BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_payment(tenant, *, created_at=None, reference=None, status=None) -> Payment:
    payment = services.transfer_create(
        model=Payment,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal("1000"),
        currency="UGX",
        party="256700000000",
        reference=reference,
    )
    if status == Status.FAILED:
        services.transfer_transition(
            transfer=payment, target=Status.FAILED, actor=Actor.mtn(), failure_code="EXPIRED"
        )
    if created_at is not None:
        Payment.objects.filter(pk=payment.pk).update(created_at=created_at)
    return Payment.objects.get(pk=payment.pk)


def make_payments(tenant, count, *, start=BASE_TIME, step=timedelta(minutes=1)) -> list[Payment]:
    return [make_payment(tenant, created_at=start + step * i) for i in range(count)]


def ids(response) -> list[str]:
    return [payment["id"] for payment in response.json()["results"]]


def newest_first(payments) -> list[str]:
    ordered = sorted(payments, key=lambda p: (p.created_at, p.pk), reverse=True)
    return [str(p.pk) for p in ordered]


def walk(client, url) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        seen += ids(response)
        pages += 1
        url = response.json()["next"]
    return seen, pages


def test_empty_list(alice):
    response = alice.client.get(PAYMENTS_URL)

    assert response.status_code == 200
    assert response.json() == {"results": [], "next": None}


def test_list_is_newest_first_with_the_payment_shape(alice):
    payments = make_payments(alice.tenant, 3)

    response = alice.client.get(PAYMENTS_URL)

    assert ids(response) == newest_first(payments)
    assert response.json()["next"] is None
    first = response.json()["results"][0]
    assert first["amount"] == "1000"
    assert first["payer"] == "256700000000"
    assert first["created_at"].startswith("2026-03-01T12:02:00")


def test_cursor_pagination_walks_every_payment_once_without_gaps(alice):
    payments = make_payments(alice.tenant, 7)
    # Ties on created_at are broken by id: three payments share one timestamp.
    Payment.objects.filter(pk__in=[p.pk for p in payments[2:5]]).update(created_at=BASE_TIME)
    payments = list(Payment.objects.all())

    seen, pages = walk(alice.client, f"{PAYMENTS_URL}?limit=2")

    assert seen == newest_first(payments)
    assert len(seen) == len(set(seen)) == 7
    assert pages == 4


def test_next_link_keeps_the_filters_and_adds_a_cursor(alice):
    make_payments(alice.tenant, 3)

    response = alice.client.get(f"{PAYMENTS_URL}?limit=2&status=PENDING")

    next_url = response.json()["next"]
    assert next_url.startswith("http://testserver/api/v1/payments?")
    query = parse_qs(urlsplit(next_url).query)
    assert query["limit"] == ["2"]
    assert query["status"] == ["PENDING"]
    assert query["cursor"]


def test_a_payment_created_while_paging_does_not_shift_later_pages(alice):
    payments = make_payments(alice.tenant, 4)

    first = alice.client.get(f"{PAYMENTS_URL}?limit=2")
    make_payment(alice.tenant, created_at=BASE_TIME + timedelta(hours=1))
    second = alice.client.get(first.json()["next"])

    assert ids(first) + ids(second) == newest_first(payments)


def test_limit_defaults_to_50(alice):
    make_payments(alice.tenant, 51, step=timedelta(seconds=1))

    response = alice.client.get(PAYMENTS_URL)

    assert len(response.json()["results"]) == 50
    assert response.json()["next"] is not None
    rest = alice.client.get(response.json()["next"])
    assert len(rest.json()["results"]) == 1
    assert rest.json()["next"] is None


def test_limit_with_leading_zeros_is_a_number(alice):
    make_payments(alice.tenant, 3)

    assert len(alice.client.get(f"{PAYMENTS_URL}?limit=0002").json()["results"]) == 2


def test_limit_200_is_the_maximum(alice):
    make_payments(alice.tenant, 3)

    assert len(alice.client.get(f"{PAYMENTS_URL}?limit=200").json()["results"]) == 3
    assert_validation_error(alice.client.get(f"{PAYMENTS_URL}?limit=201"), "limit")


def test_limit_exactly_the_count_has_no_next_page(alice):
    make_payments(alice.tenant, 2)

    response = alice.client.get(f"{PAYMENTS_URL}?limit=2")

    assert len(ids(response)) == 2
    assert response.json()["next"] is None


def test_filter_by_status(alice):
    pending = make_payment(alice.tenant, created_at=BASE_TIME)
    failed = make_payment(alice.tenant, created_at=BASE_TIME, status=Status.FAILED)

    assert ids(alice.client.get(f"{PAYMENTS_URL}?status=FAILED")) == [str(failed.pk)]
    assert ids(alice.client.get(f"{PAYMENTS_URL}?status=PENDING")) == [str(pending.pk)]
    assert ids(alice.client.get(f"{PAYMENTS_URL}?status=SUCCESSFUL")) == []


def test_filter_by_reference(alice):
    match = make_payment(alice.tenant, reference="order-42")
    make_payment(alice.tenant, reference="order-43")
    make_payment(alice.tenant)

    assert ids(alice.client.get(f"{PAYMENTS_URL}?reference=order-42")) == [str(match.pk)]
    assert ids(alice.client.get(f"{PAYMENTS_URL}?reference=order")) == []


def test_created_after_is_inclusive_and_created_before_exclusive(alice):
    payments = make_payments(alice.tenant, 5, step=timedelta(hours=1))  # 12:00 .. 16:00 UTC

    after = alice.client.get(f"{PAYMENTS_URL}?created_after=2026-03-01T14:00:00Z")
    before = alice.client.get(f"{PAYMENTS_URL}?created_before=2026-03-01T14:00:00Z")
    window = alice.client.get(
        f"{PAYMENTS_URL}?created_after=2026-03-01T13:00:00Z&created_before=2026-03-01T15:00:00Z"
    )

    assert ids(after) == newest_first(payments[2:])
    assert ids(before) == newest_first(payments[:2])
    assert ids(window) == newest_first(payments[1:3])


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-03-01T14:00:00Z",
        "2026-03-01T14:00:00+00:00",
        "2026-03-01T16:00:00+02:00",
        "2026-03-01T10:30:00-03:30",
        "2026-03-01T14:00:00",
        "2026-03-01T14:00:00.000000Z",
        "2026-03-01T14:00:00.0000001Z",
    ],
)
def test_timestamps_with_and_without_offset_mean_the_same_instant(alice, timestamp):
    payments = make_payments(alice.tenant, 5, step=timedelta(hours=1))

    response = alice.client.get(f"{PAYMENTS_URL}?created_after={quote(timestamp)}")

    assert response.status_code == 200
    assert ids(response) == newest_first(payments[2:])


def test_an_unencoded_plus_in_an_offset_is_understood(alice):
    payments = make_payments(alice.tenant, 5, step=timedelta(hours=1))

    # A "+" left unencoded in a query string arrives as a space.
    response = alice.client.get(f"{PAYMENTS_URL}?created_after=2026-03-01T16:00:00+02:00")

    assert ids(response) == newest_first(payments[2:])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=pending", "status"),
        ("status=CANCELLED", "status"),
        ("reference=" + "r" * 65, "reference"),
        ("created_after=yesterday", "created_after"),
        ("created_after=2026-13-45T00:00:00Z", "created_after"),
        ("created_before=1700000000", "created_before"),
        ("created_before=2026-03-01T25:00:00Z", "created_before"),
        ("created_before=2026-03-01T12:00:00%2B25:00", "created_before"),
        # Parse, but lie outside what a datetime holds once in UTC (an OverflowError).
        ("created_after=0001-01-01T00:00:00%2B14:00", "created_after"),
        ("created_before=9999-12-31T23:59:59-14:00", "created_before"),
        (
            "cursor="
            + base64.urlsafe_b64encode(
                b"0001-01-01T00:00:00+14:00|00000000-0000-0000-0000-000000000000"
            ).decode(),
            "cursor",
        ),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("limit=%EF%BC%95", "limit"),
        ("limit=" + "1" * 5000, "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=%21%21%21", "cursor"),
        ("cursor=%C3%A9", "cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b"2026-03-01T12:00:00|x").decode(), "cursor"),
        (
            "cursor=" + base64.urlsafe_b64encode(b"2026-03-01T12:00:00+00:00|nope").decode(),
            "cursor",
        ),
    ],
)
def test_a_malformed_filter_limit_or_cursor_is_400(alice, query, field):
    make_payments(alice.tenant, 1)

    response = alice.client.get(f"{PAYMENTS_URL}?{query}")

    assert_validation_error(response, field)


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_the_extremes_of_time_are_valid_filters(alice, timestamp):
    payments = make_payments(alice.tenant, 2)

    after = alice.client.get(f"{PAYMENTS_URL}?created_after={timestamp}")
    before = alice.client.get(f"{PAYMENTS_URL}?created_before={timestamp}")

    assert after.status_code == before.status_code == 200
    assert sorted(ids(after) + ids(before)) == sorted(str(p.pk) for p in payments)


def test_a_cursor_from_another_offset_means_the_same_instant(alice):
    payments = make_payments(alice.tenant, 3)
    middle = payments[1]
    moment = middle.created_at.astimezone(timezone(timedelta(hours=3)))
    cursor = base64.urlsafe_b64encode(f"{moment.isoformat()}|{middle.pk}".encode()).decode()

    response = alice.client.get(f"{PAYMENTS_URL}?cursor={cursor}")

    assert ids(response) == [str(payments[0].pk)]


def test_several_malformed_parameters_are_reported_together(alice):
    response = alice.client.get(f"{PAYMENTS_URL}?status=x&limit=0&created_after=x")

    assert_validation_error(response, "status", "limit", "created_after")


def test_another_tenants_payments_are_never_listed(alice, bob):
    mine = make_payments(alice.tenant, 3)
    theirs = make_payments(bob.tenant, 3)

    alice_seen, _ = walk(alice.client, f"{PAYMENTS_URL}?limit=1")
    bob_seen, _ = walk(bob.client, f"{PAYMENTS_URL}?limit=1")

    assert alice_seen == newest_first(mine)
    assert bob_seen == newest_first(theirs)


def test_another_tenants_cursor_reveals_nothing_of_theirs(alice, bob):
    make_payments(alice.tenant, 3)
    bobs = make_payments(bob.tenant, 2, start=BASE_TIME - timedelta(days=1))
    next_url = alice.client.get(f"{PAYMENTS_URL}?limit=1").json()["next"]
    cursor = parse_qs(urlsplit(next_url).query)["cursor"][0]

    response = bob.client.get(f"{PAYMENTS_URL}?limit=5&cursor={cursor}")

    assert response.status_code == 200
    assert ids(response) == newest_first(bobs)


def test_list_requires_authentication(alice):
    make_payments(alice.tenant, 1)
    alice.client.credentials()

    assert_error(alice.client.get(PAYMENTS_URL), 401, "authentication_failed")
