"""The callback doors' rate limit per client address, and what it does when Redis is down."""

from __future__ import annotations

import pytest

from webhooks.models import MtnCallback

from .conftest import assert_error, post_signed

pytestmark = pytest.mark.django_db

UNKNOWN = {"externalId": "00000000-0000-0000-0000-000000000000", "status": "SUCCESSFUL"}


def test_callbacks_over_the_rate_are_429_with_retry_after_and_store_nothing(http, settings):
    settings.CALLBACK_RATE_LIMIT = "2/d"
    assert post_signed(http, UNKNOWN).status_code == 200
    assert post_signed(http, UNKNOWN).status_code == 200

    refused = post_signed(http, UNKNOWN)

    assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused["Retry-After"]) <= 86400
    assert MtnCallback.objects.count() == 2


def test_with_redis_down_callbacks_are_taken_past_the_rate(http, settings, dead_redis):
    settings.CALLBACK_RATE_LIMIT = "1/d"

    answers = [post_signed(http, UNKNOWN).status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    assert MtnCallback.objects.count() == 3
