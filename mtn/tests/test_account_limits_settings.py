"""Per-account MTN call limits as data: set by ``mtn_account_set`` and the admin, read by
``mtn.limits.account_limits`` (the settings where an account sets none)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from gateway.audit import Actor
from gateway.models import AuditEvent
from mtn.accounts import MtnAccountError, default_account, mtn_account_set
from mtn.limits import AccountLimits, account_limits
from mtn.models import MtnAccount
from payments.tests.admin.factories import fast_password_hashing  # noqa: F401 - autouse

COLLECTION = {
    "subscription_key": "ug-col-sub",
    "api_user": "0b3f8a56-9f0e-4b8e-9a55-2f1d3c4b5a6e",
    "api_key": "ug-col-key",
}
SET_ARGS = ("ug", "--target-environment", "mtnuganda", "--currency", "UGX")


def _run_set(*args: str, stdin: str = "{}") -> dict:
    out = io.StringIO()
    call_command("mtn_account_set", *args, stdin=io.StringIO(stdin), stdout=out)
    return json.loads(out.getvalue())


def _create(**limits) -> MtnAccount:
    return mtn_account_set(
        name="ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={"collection": COLLECTION},
        actor=Actor.system(),
        **limits,
    )


def test_default_and_unset_accounts_use_the_settings(db, settings):
    settings.MTN_MAX_IN_FLIGHT = 7
    settings.MTN_RATE_LIMIT = 12.5
    assert account_limits(default_account()) == AccountLimits(7, 12.5)
    assert account_limits(_create()) == AccountLimits(7, 12.5)


def test_an_account_row_sets_its_own_limits(db, settings):
    settings.MTN_MAX_IN_FLIGHT = 7
    account = _create(max_in_flight=3, rate_limit="2.5")
    fresh = MtnAccount.objects.get(pk=account.pk)
    assert (fresh.max_in_flight, fresh.rate_limit) == (3, 2.5)
    assert account_limits(fresh) == AccountLimits(3, 2.5)
    event = AuditEvent.objects.get(action="mtn_account.created")
    assert (event.data["max_in_flight"], event.data["rate_limit"]) == (3, 2.5)


def test_the_command_sets_keeps_and_clears_the_limits_and_prints_the_same_json(db, settings):
    settings.MTN_RATE_LIMIT = 50.0
    printed = _run_set(
        *SET_ARGS,
        "--max-in-flight",
        "4",
        "--rate-limit",
        "10",
        stdin=json.dumps({"collection": COLLECTION}),
    )
    # The contract's output, unchanged: the limits are not part of it.
    assert printed == {
        "account": "ug",
        "tenant": None,
        "target_environment": "mtnuganda",
        "currencies": ["UGX"],
    }
    assert account_limits(MtnAccount.objects.get(name="ug")) == AccountLimits(4, 10.0)

    _run_set(*SET_ARGS)  # flags left out: unchanged
    assert account_limits(MtnAccount.objects.get(name="ug")) == AccountLimits(4, 10.0)

    _run_set(*SET_ARGS, "--rate-limit", "default")
    account = MtnAccount.objects.get(name="ug")
    assert (account.max_in_flight, account.rate_limit) == (4, None)
    assert account_limits(account) == AccountLimits(4, 50.0)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--max-in-flight", "0"), "Max in flight"),
        (("--max-in-flight", "2.5"), "Max in flight"),
        (("--max-in-flight", "lots"), "Max in flight"),
        (("--rate-limit", "0"), "rate limit"),
        (("--rate-limit", "-3"), "rate limit"),
        (("--rate-limit", "nan"), "rate limit"),
        (("--rate-limit", "fast"), "rate limit"),
    ],
)
def test_bad_limits_are_refused_and_nothing_is_stored(db, flags, message):
    _create(max_in_flight=5)
    before = list(MtnAccount.objects.values())
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError, match=message):
        _run_set(*SET_ARGS, *flags, stdin=json.dumps({"collection": COLLECTION}))
    assert list(MtnAccount.objects.values()) == before
    assert AuditEvent.objects.count() == events
    with pytest.raises(MtnAccountError, match=message):
        _create(**{flags[0][2:].replace("-", "_"): flags[1]})


def test_the_database_refuses_a_limit_below_one(db):
    account = _create()
    MtnAccount.objects.filter(pk=account.pk).update(max_in_flight=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        MtnAccount.objects.filter(pk=account.pk).update(rate_limit=0)
    assert MtnAccount.objects.get(pk=account.pk).rate_limit is None


def test_the_admin_shows_and_edits_the_limits(admin_client, db, settings):
    settings.MTN_MAX_IN_FLIGHT = 32
    account = _create(max_in_flight=6)
    url = reverse("admin:mtn_mtnaccount_change", args=[account.pk])

    page = admin_client.get(url).content.decode()
    assert "MTN call limits" in page
    assert 'name="max_in_flight" value="6"' in page
    assert "MTN_MAX_IN_FLIGHT (32)" in page

    form = {
        "target_environment": "mtnuganda",
        "currencies": "UGX",
        "base_url": "https://proxy.momoapi.mtn.com",
        "max_in_flight": "",  # empty: back to the setting
        "rate_limit": "3.5",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    fresh = MtnAccount.objects.get(pk=account.pk)
    assert (fresh.max_in_flight, fresh.rate_limit) == (None, 3.5)

    response = admin_client.post(url, {**form, "rate_limit": "0"})
    assert response.status_code == 200  # refused in the form
    assert MtnAccount.objects.get(pk=account.pk).rate_limit == 3.5
