"""The shared cache when Redis is unreachable: process memory instead, never an error.

Redis is reached through a ``TcpProxy`` the test cuts or blackholes; the machine's Redis is
needed only by the tests of recovery (skipped without ``REDIS_URL``).
"""

from __future__ import annotations

import logging

from django.core.cache import cache, caches

from gateway import cache as gateway_cache
from gateway.metrics import REGISTRY


def fallback_count() -> float:
    return REGISTRY.get_sample_value("momo_cache_fallback_total") or 0.0


def test_with_redis_down_the_cache_keeps_values_in_process_memory(dead_redis):
    before = fallback_count()

    cache.set("token", "abc", timeout=60)

    assert cache.get("token") == "abc"
    assert cache.add("lock", 1) is True
    assert cache.add("lock", 2) is False
    assert cache.incr("lock") == 2
    cache.delete("token")
    assert cache.get("token") is None
    assert fallback_count() - before == 7


def test_after_one_failure_redis_is_left_alone_for_a_while(dead_redis):
    for index in range(20):
        cache.set(f"k{index}", index)
        assert cache.get(f"k{index}") == index

    assert dead_redis.accepted == 1


def test_a_silent_redis_costs_one_timeout_then_nothing(silent_redis):
    cache.set("token", "abc")
    for _ in range(20):
        assert cache.get("token") == "abc"

    assert silent_redis.accepted == 1


def test_redis_down_is_logged_once_not_on_every_call(dead_redis, caplog, monkeypatch):
    monkeypatch.setattr(gateway_cache, "RETRY_SECONDS", 0.0)  # every call tries Redis again

    with caplog.at_level(logging.WARNING, logger="gateway.cache"):
        for _ in range(10):
            cache.get("anything")

    warnings = [r for r in caplog.records if r.name == "gateway.cache"]
    assert dead_redis.accepted == 10
    assert len(warnings) == 1
    assert "Redis cannot be reached" in warnings[0].getMessage()


def test_when_redis_is_back_the_cache_uses_it_again_and_forgets_the_outage(
    redis_behind_proxy, monkeypatch
):
    cache.set("shared", "before", timeout=60)
    redis_behind_proxy.cut()
    cache.set("shared", "during", timeout=60)  # fails over: process memory only
    assert cache.get("shared") == "during"

    redis_behind_proxy.restore()
    monkeypatch.setattr(gateway_cache, "RETRY_SECONDS", 0.0)
    gateway_cache.circuit.failed(ConnectionError("still open"), use="cache")

    assert cache.get("shared") == "before"  # Redis again: it never saw the outage's value
    assert not gateway_cache.circuit.is_open
    assert caches["default"].fallback.get("shared") is None
