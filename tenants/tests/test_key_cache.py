"""The per-process API-key cache: used while valid, never after a revocation or suspension."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gateway.audit import Actor
from payments.tests.helpers import PAYMENTS_URL, assert_error
from tenants import key_cache
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_revoke, tenant_update

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _shared_cache(request, monkeypatch):
    """These tests run in one process, so a per-process cache (SQLite runs, no REDIS_URL)
    can stand in for Redis: the mechanism is the same."""
    if "per_process" not in request.node.name:
        monkeypatch.setattr(key_cache, "in_use", lambda: True)


def auth_reads(client) -> tuple[int, int]:
    """(status, statements that read the API key) of one list request."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(PAYMENTS_URL)
    reads = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and "tenants_apikey" in q["sql"]
    ]
    return response.status_code, len(reads)


def test_a_second_request_reads_no_api_key(alice):
    assert auth_reads(alice.client) == (200, 1)

    assert auth_reads(alice.client) == (200, 0)


def test_a_revoked_key_is_refused_on_the_very_next_request(alice):
    assert auth_reads(alice.client)[0] == 200
    api_key = ApiKey.objects.get(tenant=alice.tenant)

    api_key_revoke(api_key=api_key, actor=Actor.system())

    status, reads = auth_reads(alice.client)
    assert status == 401
    assert reads == 1


def test_a_revocation_in_another_process_reaches_this_one_through_the_shared_generation(alice):
    assert auth_reads(alice.client) == (200, 1)
    # Another process revoked the key: the row changed and the shared generation moved on,
    # but this process's own entries were not touched.
    ApiKey.objects.filter(tenant=alice.tenant).update(revoked_at=timezone.now())
    cache.incr(key_cache.GENERATION_KEY)

    assert auth_reads(alice.client) == (401, 1)


def test_without_the_shared_generation_move_the_entry_would_be_used(alice):
    """The counterpart of the test above: the generation is what refuses the key there."""
    assert auth_reads(alice.client) == (200, 1)
    ApiKey.objects.filter(tenant=alice.tenant).update(revoked_at=timezone.now())

    assert auth_reads(alice.client) == (200, 0)


def test_a_suspended_tenant_is_refused_on_the_very_next_request(alice):
    assert auth_reads(alice.client)[0] == 200
    tenant = Tenant.objects.get(pk=alice.tenant.pk)

    tenant_update(
        tenant=tenant,
        changes={"is_active": False},
        previous={"is_active": True},
        actor=Actor.system(),
    )

    response = alice.client.get(PAYMENTS_URL)
    assert_error(response, 403, "tenant_suspended")


def test_a_cleared_shared_cache_makes_every_entry_stale(alice):
    assert auth_reads(alice.client) == (200, 1)
    cache.clear()  # e.g. Redis restarted: the next generation is a new random number

    assert auth_reads(alice.client) == (200, 1)


def test_a_failing_shared_cache_means_reading_the_database_every_time(alice):
    assert auth_reads(alice.client) == (200, 1)
    with (
        mock.patch.object(key_cache.cache, "get", side_effect=ConnectionError("redis down")),
        mock.patch.object(key_cache, "_shared_down_until", 0.0),
    ):
        assert auth_reads(alice.client) == (200, 1)
        assert auth_reads(alice.client) == (200, 1)


def test_a_lookup_that_raced_a_revocation_is_not_kept(alice):
    keys = list(ApiKey.objects.select_related("tenant").filter(tenant=alice.tenant))
    prefix, slug = keys[0].prefix, alice.tenant.slug

    def load_while_another_process_revokes() -> list[ApiKey]:
        # The rows were read just before the revocation committed and moved the generation.
        key_cache.invalidate()
        return keys

    key_cache.lookup(prefix=prefix, slug=slug, load=load_while_another_process_revokes)
    reloaded = []
    key_cache.lookup(prefix=prefix, slug=slug, load=lambda: reloaded.append(1) or [])

    assert reloaded == [1]


def test_unknown_keys_are_not_cached(alice):
    loads = []

    for _ in range(2):
        key_cache.lookup(prefix="mgw_unknown1", slug="alice", load=lambda: loads.append(1) or [])

    assert loads == [1, 1]


def test_nothing_is_cached_where_the_cache_is_per_process(alice, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    assert auth_reads(alice.client) == (200, 1)
    assert auth_reads(alice.client) == (200, 1)


def test_nothing_is_cached_while_redis_is_down_and_the_cache_answers_from_memory(dead_redis):
    # FailoverRedisCache answers from this process's memory while Redis is down: such a
    # generation is not shared, so a revocation in another process could not reach it.
    assert key_cache.shared_generation() is None
