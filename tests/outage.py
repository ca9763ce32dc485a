"""Fixtures for tests of Redis outages: the cache pointed at a ``TcpProxy`` the test controls.

A pytest plugin (the root conftest lists it), so every test can ask for these by name. Each
also keeps ``gateway.cache.circuit`` closed before and after, so that one test's outage
never leaks into the next.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from django.core.cache import caches

from gateway import cache as gateway_cache
from tests.proxy import TcpProxy


def redis_through(proxy: TcpProxy, db: int = 0) -> dict:
    """``CACHES`` as production sets it, with Redis behind ``proxy``."""
    return {
        "default": {
            "BACKEND": "gateway.cache.FailoverRedisCache",
            "LOCATION": f"redis://127.0.0.1:{proxy.port}/{db}",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25},
        }
    }


@pytest.fixture
def closed_circuit() -> Iterator[None]:
    gateway_cache.circuit.reset()
    yield
    gateway_cache.circuit.reset()


@pytest.fixture
def dead_redis(settings, closed_circuit) -> Iterator[TcpProxy]:
    """The cache points at a proxy that resets every connection (Redis is down)."""
    with TcpProxy("127.0.0.1", 9) as proxy:
        proxy.cut()
        settings.CACHES = redis_through(proxy)
        yield proxy


@pytest.fixture
def silent_redis(settings, closed_circuit) -> Iterator[TcpProxy]:
    """The cache points at a proxy that accepts and never answers (a host gone silent)."""
    with TcpProxy("127.0.0.1", 9) as proxy:
        proxy.blackhole()
        settings.CACHES = redis_through(proxy)
        yield proxy


def real_redis_url() -> str | None:
    url = os.environ.get("REDIS_URL", "")
    return url if url.startswith("redis://") else None


@pytest.fixture
def redis_behind_proxy(settings, closed_circuit) -> Iterator[TcpProxy]:
    """The machine's Redis (``REDIS_URL``, skipped without) through a proxy, up for now."""
    url = real_redis_url()
    if url is None:
        pytest.skip("needs Redis: set REDIS_URL=redis://...")
    parsed = urlparse(url)
    db = int(parsed.path.lstrip("/") or 0)
    with TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379) as proxy:
        settings.CACHES = redis_through(proxy, db)
        caches["default"].clear()
        yield proxy
        proxy.restore()
        gateway_cache.circuit.reset()
        caches["default"].clear()
