"""Rate limits: exact across processes on Redis, one round trip each, open when Redis is down."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from redis.connection import Connection

from gateway.metrics import REGISTRY
from payments.tests.helpers import PAYMENTS_URL, assert_error
from tenants.rates import Rate, parse_rate, rate_hit
from tests.outage import real_redis_url


def fail_open_count(scope: str) -> float:
    return REGISTRY.get_sample_value("momo_rate_limit_fail_open_total", {"scope": scope}) or 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("120/m", Rate(120, 60)),
        ("10/s", Rate(10, 1)),
        ("5000/h", Rate(5000, 3600)),
        ("3/d", Rate(3, 86400)),
        ("10/5m", Rate(10, 300)),
        ("10/0m", Rate(10, 60)),
    ],
)
def test_rates_read_as_count_per_period(text, expected):
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "120", "m/120", "120/x", "-1/m", "1.5/m"])
def test_malformed_rates_are_refused(text):
    with pytest.raises(ValueError, match="is not a rate"):
        parse_rate(text)


def test_in_process_counts_are_exact_and_say_when_the_window_ends(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    key = uuid.uuid4().hex

    usages = [rate_hit(scope="test", key=key, rate="3/d") for _ in range(5)]

    assert [u.should_limit for u in usages] == [False, False, False, True, True]
    assert all(0 < u.time_left <= 86400 for u in usages)


needs_redis = pytest.mark.skipif(real_redis_url() is None, reason="needs REDIS_URL")

_HITS = """
import django, sys
django.setup()
from tenants.rates import rate_hit
allowed = 0
for _ in range(int(sys.argv[2])):
    usage = rate_hit(scope="exact", key=sys.argv[1], rate="100/d")
    assert usage is not None, "Redis did not answer"
    allowed += not usage.should_limit
print(allowed)
"""


@needs_redis
def test_a_limit_is_exact_across_processes_counting_at_once():
    key = uuid.uuid4().hex
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway.settings"}
    processes = [
        subprocess.Popen(  # noqa: S603 - this interpreter, our own code
            [sys.executable, "-c", _HITS, key, "60"],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    allowed = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        allowed.append(int(out))

    assert sum(allowed) == 100  # of 180 requests, exactly the limit got through


@needs_redis
def test_a_check_is_one_round_trip_to_redis(redis_behind_proxy, monkeypatch):
    sent = []
    original = Connection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    rate_hit(scope="rt", key="warm-up", rate="10/d")  # the connection's own set-up
    monkeypatch.setattr(Connection, "send_packed_command", counting)

    usage = rate_hit(scope="rt", key=uuid.uuid4().hex, rate="10/d")

    assert usage.count == 1
    assert len(sent) == 1


def test_with_redis_down_a_check_lets_the_request_through_and_is_counted(dead_redis, caplog):
    before = fail_open_count("api")

    with caplog.at_level(logging.WARNING, logger="gateway.cache"):
        results = [rate_hit(scope="api", key="k", rate="1/d") for _ in range(5)]

    assert results == [None] * 5
    assert fail_open_count("api") - before == 5
    assert dead_redis.accepted == 1  # the breaker keeps the other checks off Redis
    assert len([r for r in caplog.records if "Redis cannot be reached" in r.getMessage()]) == 1


@pytest.mark.django_db
def test_with_redis_down_the_api_answers_past_the_rate(alice, dead_redis):
    alice.tenant.rate_limit = "1/d"
    alice.tenant.save(update_fields=["rate_limit"])

    for _ in range(3):
        assert alice.client.get(PAYMENTS_URL).status_code == 200


@needs_redis
@pytest.mark.django_db
def test_rate_limits_hold_again_once_redis_is_back(alice, redis_behind_proxy, monkeypatch):
    from gateway import cache as gateway_cache

    alice.tenant.rate_limit = "1/d"
    alice.tenant.save(update_fields=["rate_limit"])
    monkeypatch.setattr(gateway_cache, "RETRY_SECONDS", 0.0)  # try Redis on every check
    assert alice.client.get(PAYMENTS_URL).status_code == 200
    redis_behind_proxy.cut()
    assert alice.client.get(PAYMENTS_URL).status_code == 200  # open while Redis is down

    redis_behind_proxy.restore()

    assert_error(alice.client.get(PAYMENTS_URL), 429, "rate_limited")
