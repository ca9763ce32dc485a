"""Operator commands: create_tenant, create_api_key, revoke_api_key."""

from __future__ import annotations

import hashlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from gateway.models import AuditEvent
from payments.tests.helpers import PAYMENTS_URL, assert_error
from tenants.keys import hash_api_key
from tenants.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def client_for(slug: str, api_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key, HTTP_X_TENANT_ID=slug)
    return client


def snapshot() -> tuple:
    return (
        list(Tenant.objects.order_by("slug").values_list("slug", "name", "is_active")),
        list(ApiKey.objects.order_by("pk").values_list("pk", "revoked_at")),
        AuditEvent.objects.count(),
    )


# --- create_tenant --------------------------------------------------------------------------


def test_create_tenant_prints_exactly_one_json_object():
    output = run("create_tenant", "acme", "--name", "Acme Ltd")

    printed = json.loads(output)
    assert set(printed) == {"tenant", "api_key", "webhook_secret"}
    assert printed["tenant"] == "acme"
    assert printed["webhook_secret"].startswith("whsec_")
    assert len(printed["api_key"]) >= 32
    assert output.strip().count("\n") == 0


def test_create_tenant_stores_the_tenant_and_only_a_hash_of_the_key():
    printed = json.loads(
        run(
            "create_tenant",
            "acme",
            "--name",
            "Acme Ltd",
            "--webhook-url",
            "https://acme.example.com/hooks",
            "--rate-limit",
            "600/m",
        )
    )
    raw_key = printed["api_key"]

    tenant = Tenant.objects.get(slug="acme")
    assert tenant.name == "Acme Ltd"
    assert tenant.webhook_url == "https://acme.example.com/hooks"
    assert tenant.rate_limit == "600/m"
    assert tenant.is_active is True
    assert tenant.webhook_secret == printed["webhook_secret"]

    api_key = ApiKey.objects.get(tenant=tenant)
    assert api_key.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    assert api_key.prefix == raw_key[:12]
    row = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert all(raw_key not in str(value) for value in row.values())
    assert all(raw_key not in json.dumps(event.data) for event in AuditEvent.objects.all())


def test_the_new_tenants_key_works_on_the_api():
    printed = json.loads(run("create_tenant", "acme", "--name", "Acme Ltd"))

    response = client_for("acme", printed["api_key"]).get(PAYMENTS_URL)

    assert response.status_code == 200
    assert response.json() == {"results": [], "next": None}


def test_create_tenant_records_tenant_and_key_events():
    run("create_tenant", "acme", "--name", "Acme Ltd")
    tenant = Tenant.objects.get(slug="acme")

    events = list(AuditEvent.objects.filter(tenant=tenant).order_by("pk"))

    assert [event.action for event in events] == ["tenant.created", "api_key.created"]
    assert events[0].object_id == str(tenant.pk)
    assert events[0].data["slug"] == "acme"
    assert all(event.actor == "system" for event in events)


def test_each_tenant_gets_its_own_secret_and_key():
    first = json.loads(run("create_tenant", "acme", "--name", "Acme"))
    second = json.loads(run("create_tenant", "acme-2", "--name", "Acme 2"))

    assert first["api_key"] != second["api_key"]
    assert first["webhook_secret"] != second["webhook_secret"]


def test_a_duplicate_slug_exits_non_zero_and_writes_nothing(tenant):
    before = snapshot()

    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", tenant.slug, "--name", "Someone Else")

    assert snapshot() == before
    assert Tenant.objects.get(slug=tenant.slug).name == "Alice Shop"


@pytest.mark.parametrize(
    "slug",
    ["Acme", "acme_ltd", "-acme", "acme-", "ac me", "acmé", "a" * 65, "acme/1", ""],
)
def test_a_bad_slug_exits_non_zero_and_writes_nothing(slug):
    before = snapshot()

    with pytest.raises(CommandError):
        run("create_tenant", slug, "--name", "Acme")

    assert snapshot() == before


@pytest.mark.parametrize(
    "extra",
    [
        ["--rate-limit", "fast"],
        ["--rate-limit", "10/week"],
        ["--webhook-url", "not a url"],
        ["--name", ""],
    ],
)
def test_bad_options_exit_non_zero_and_write_nothing(extra):
    before = snapshot()

    with pytest.raises(CommandError):
        run("create_tenant", "acme", "--name", "Acme", *extra)

    assert snapshot() == before


def test_create_tenant_requires_a_name():
    with pytest.raises(CommandError):
        run("create_tenant", "acme")

    assert not Tenant.objects.filter(slug="acme").exists()


# --- create_api_key -------------------------------------------------------------------------


def test_create_api_key_prints_the_tenant_and_a_working_key(tenant):
    output = run("create_api_key", tenant.slug)

    printed = json.loads(output)
    assert set(printed) == {"tenant", "api_key"}
    assert printed["tenant"] == tenant.slug
    assert ApiKey.objects.filter(tenant=tenant).count() == 2
    assert client_for(tenant.slug, printed["api_key"]).get(PAYMENTS_URL).status_code == 200


def test_create_api_key_stores_only_a_hash_and_records_an_event(tenant):
    raw_key = json.loads(run("create_api_key", tenant.slug))["api_key"]

    api_key = ApiKey.objects.get(prefix=raw_key[:12])
    assert api_key.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    assert all(
        raw_key not in str(v) for v in ApiKey.objects.filter(pk=api_key.pk).values().get().values()
    )
    event = AuditEvent.objects.get(action="api_key.created", object_id=str(api_key.pk))
    assert event.tenant == tenant
    assert event.data == {"prefix": raw_key[:12]}


def test_a_new_key_does_not_work_for_another_tenant(tenant, other_tenant):
    raw_key = json.loads(run("create_api_key", tenant.slug))["api_key"]

    response = client_for(other_tenant.slug, raw_key).get(PAYMENTS_URL)

    assert_error(response, 401, "authentication_failed")


def test_create_api_key_for_an_unknown_tenant_exits_non_zero_and_writes_nothing(tenant):
    before = snapshot()

    with pytest.raises(CommandError, match="No tenant"):
        run("create_api_key", "nobody")

    assert snapshot() == before


# --- revoke_api_key -------------------------------------------------------------------------


def test_revoke_by_the_first_12_characters_revokes_that_key(alice, bob):
    before = AuditEvent.objects.filter(action="api_key.revoked").count()

    output = run("revoke_api_key", alice.api_key[:12])

    assert alice.api_key[:12] in output
    api_key = ApiKey.objects.get(prefix=alice.api_key[:12])
    assert api_key.revoked_at is not None
    assert_error(alice.client.get(PAYMENTS_URL), 401, "authentication_failed")
    assert bob.client.get(PAYMENTS_URL).status_code == 200
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == before + 1
    event = AuditEvent.objects.get(action="api_key.revoked")
    assert event.object_id == str(api_key.pk)
    assert event.tenant == alice.tenant


def test_revoke_by_the_whole_key(alice):
    run("revoke_api_key", alice.api_key)

    assert_error(alice.client.get(PAYMENTS_URL), 401, "authentication_failed")


def test_revoke_leaves_the_tenants_other_keys_active(alice):
    second = json.loads(run("create_api_key", "alice"))["api_key"]

    run("revoke_api_key", alice.api_key[:12])

    assert client_for("alice", second).get(PAYMENTS_URL).status_code == 200


@pytest.mark.parametrize(
    "prefix",
    ["mgw_doesnotexist", "zzzzzzzzzzzz", "mgw_" + "x" * 43, "abc", ""],
    ids=["unknown-prefix", "unknown-12", "unknown-whole-key", "too-short", "empty"],
)
def test_an_unknown_prefix_exits_non_zero_and_revokes_nothing(alice, bob, prefix):
    before = snapshot()

    with pytest.raises(CommandError):
        run("revoke_api_key", prefix)

    assert snapshot() == before
    assert alice.client.get(PAYMENTS_URL).status_code == 200


def test_a_whole_key_with_a_known_prefix_but_wrong_rest_revokes_nothing(alice):
    before = snapshot()

    with pytest.raises(CommandError):
        run("revoke_api_key", alice.api_key[:12] + "wrong-rest-of-the-key")

    assert snapshot() == before


def test_an_ambiguous_prefix_exits_non_zero_and_revokes_nothing(alice):
    second = json.loads(run("create_api_key", "alice"))["api_key"]
    # Two keys whose stored prefixes share their first 12 characters.
    ApiKey.objects.filter(prefix=second[:12]).update(prefix=alice.api_key[:12])
    before = snapshot()

    with pytest.raises(CommandError, match="2 active API keys"):
        run("revoke_api_key", alice.api_key[:12])

    assert snapshot() == before
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0
    assert alice.client.get(PAYMENTS_URL).status_code == 200


def test_a_short_prefix_matching_several_keys_is_ambiguous(alice, bob):
    before = snapshot()

    # Every key starts with the "mgw_" mark.
    with pytest.raises(CommandError, match="active API keys"):
        run("revoke_api_key", "mgw_")

    assert snapshot() == before


def test_the_whole_key_picks_one_of_two_keys_sharing_a_prefix(alice):
    twin = alice.api_key[:12] + "another-secret-part-of-the-key"
    ApiKey.objects.create(tenant=alice.tenant, prefix=twin[:12], key_hash=hash_api_key(twin))
    assert client_for("alice", twin).get(PAYMENTS_URL).status_code == 200

    run("revoke_api_key", twin)

    assert alice.client.get(PAYMENTS_URL).status_code == 200
    assert_error(client_for("alice", twin).get(PAYMENTS_URL), 401, "authentication_failed")
    assert ApiKey.objects.get(key_hash=hash_api_key(twin)).revoked_at is not None


def test_revoking_an_already_revoked_key_exits_non_zero(alice):
    run("revoke_api_key", alice.api_key[:12])
    before = snapshot()

    with pytest.raises(CommandError, match="No active API key"):
        run("revoke_api_key", alice.api_key[:12])

    assert snapshot() == before
