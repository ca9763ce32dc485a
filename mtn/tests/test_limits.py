"""Per-account MTN call limits (``mtn.limits``): in flight and per second, per account, over
every process through Redis; in the process's memory without Redis; open to the process's
share while Redis is down; MTN's 429 slows that account down only."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.connection import Connection

from gateway import cache as gateway_cache
from gateway.metrics import REGISTRY
from mtn import limits
from mtn.client import MtnClient
from mtn.errors import MtnRateLimitedError, MtnRetryableError
from mtn.limits import (
    AccountLimits,
    account_slow_down,
    forget_local_state,
    permit_try_acquire,
    permit_wait_hint,
    slow_down_after,
)
from mtn.tests.conftest import fast_policy, sandbox_client_config
from tests.outage import real_redis_url

needs_redis = pytest.mark.skipif(real_redis_url() is None, reason="needs REDIS_URL")
WIDE = 1_000_000.0  # a rate that never binds


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    forget_local_state()
    yield
    forget_local_state()


@pytest.fixture
def in_process(settings) -> None:
    """No Redis configured: the limits live in this process (development, SQLite tests)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch, in_process) -> Clock:
    fake = Clock()
    monkeypatch.setattr(limits, "_clock", fake)
    return fake


@pytest.fixture
def real_redis(settings, closed_circuit) -> None:
    url = real_redis_url()
    if url is None:
        pytest.skip("needs Redis: set REDIS_URL=redis://...")
    settings.CACHES = {
        "default": {
            "BACKEND": "gateway.cache.FailoverRedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1.0, "SOCKET_TIMEOUT": 1.0},
        }
    }


def account() -> str:
    return f"acct-{uuid.uuid4().hex[:12]}"


def fail_open_count() -> float:
    return REGISTRY.get_sample_value("momo_rate_limit_fail_open_total", {"scope": "mtn"}) or 0.0


def take(name: str, account_limits: AccountLimits, count: int, **kwargs: Any) -> list:
    return [permit_try_acquire(name, account_limits, **kwargs) for _ in range(count)]


# --- the limits themselves ----------------------------------------------------------------


def test_limits_refuse_nonsense():
    with pytest.raises(ValueError, match="max_in_flight"):
        AccountLimits(0, 10)
    with pytest.raises(ValueError, match="rate_per_second"):
        AccountLimits(1, 0)
    with pytest.raises(ValueError, match="rate_per_second"):
        AccountLimits(1, float("nan"))


def test_a_share_is_the_limits_divided_by_the_processes_never_below_one_call():
    assert AccountLimits(32, 50).share(4) == AccountLimits(8, 12.5)
    assert AccountLimits(3, 50).share(4) == AccountLimits(1, 12.5)
    assert AccountLimits(32, 50).share(0) == AccountLimits(32, 50)


# --- in one process (no Redis configured) -------------------------------------------------


def test_in_flight_cap_holds_and_a_release_frees_a_slot(clock):
    cap = AccountLimits(2, WIDE)
    first, second, third = take("a", cap, 3)
    assert first is not None
    assert second is not None
    assert third is None
    assert permit_wait_hint("a", cap) > 0

    first.release()
    first.release()  # twice: harmless, frees one slot only
    fourth, fifth = take("a", cap, 2)
    assert fourth is not None
    assert fifth is None


def test_refusals_at_the_cap_spend_nothing_of_the_rate(clock):
    one = AccountLimits(1, 10)  # one call per 100 ms, burst 1
    held = permit_try_acquire("a", one)
    clock.now += 0.1
    assert take("a", one, 5) == [None] * 5  # at the cap, though the rate would allow one
    held.release()
    assert permit_try_acquire("a", one) is not None


def test_calls_are_spaced_at_the_rate_after_a_burst(clock):
    rate = AccountLimits(1000, 50)  # burst: 0.1 s worth, 5 calls
    assert all(take("a", rate, 5))
    assert permit_try_acquire("a", rate) is None
    assert permit_wait_hint("a", rate) == pytest.approx(0.02)

    clock.now += 0.02
    assert permit_try_acquire("a", rate) is not None
    assert permit_try_acquire("a", rate) is None
    # Over 10 s of constant demand: the burst and one call per 20 ms.
    granted = 0
    for _ in range(10_000):
        clock.now += 0.001
        granted += permit_try_acquire("a", rate) is not None
    assert 499 <= granted <= 500  # 10 s / 20 ms, give or take the float clock's rounding


def test_each_account_has_its_own_limits(clock):
    cap = AccountLimits(1, WIDE)
    assert permit_try_acquire("a", cap) is not None
    assert permit_try_acquire("a", cap) is None
    assert permit_try_acquire("b", cap) is not None


def test_a_429_slows_down_that_account_only_and_never_shortens_a_longer_wait(clock):
    wide = AccountLimits(10, WIDE)
    account_slow_down("a", 2.0)
    account_slow_down("a", 0.5)
    assert permit_try_acquire("a", wide) is None
    assert permit_wait_hint("a", wide) == pytest.approx(2.0)
    assert permit_try_acquire("b", wide) is not None

    clock.now += 2.0
    assert permit_try_acquire("a", wide) is not None


def test_slow_down_after_reads_mtns_retry_after_and_ignores_other_errors(clock):
    wide = AccountLimits(10, WIDE)
    assert slow_down_after("a", MtnRetryableError("HTTP_503")) == 0
    assert permit_try_acquire("a", wide) is not None
    assert slow_down_after("a", MtnRateLimitedError("RATE_LIMITED", retry_after=3.0)) == 3.0
    assert permit_wait_hint("a", wide) == pytest.approx(3.0)
    assert slow_down_after("b", MtnRateLimitedError("RATE_LIMITED")) == 1.0  # no Retry-After
    assert permit_try_acquire("b", wide) is None


def test_a_permit_never_released_frees_its_slot_when_its_lease_ends(clock):
    cap = AccountLimits(1, WIDE)
    assert permit_try_acquire("a", cap, lease_seconds=5) is not None
    clock.now += 4.9
    assert permit_try_acquire("a", cap) is None
    clock.now += 0.2
    assert permit_try_acquire("a", cap) is not None


def test_the_default_lease_outlasts_any_call_with_its_retries(settings):
    settings.MTN_CONNECT_TIMEOUT, settings.MTN_READ_TIMEOUT = 3.05, 10.0
    settings.MTN_SUBMIT_MAX_TRIES, settings.MTN_SUBMIT_MAX_SECONDS = 3, 8.0
    # 8 s of retry budget, then at most one more try, each try connect + read, and a token.
    assert limits.default_lease_seconds() > 8.0 + 2 * 13.05


def test_threads_of_one_process_never_exceed_the_cap(in_process):
    cap = AccountLimits(3, WIDE)
    holding = peak = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal holding, peak
        done = 0
        while done < 30:
            permit = permit_try_acquire("a", cap)
            if permit is None:
                time.sleep(0.0005)
                continue
            with lock:
                holding += 1
                peak = max(peak, holding)
            time.sleep(0.001)
            with lock:
                holding -= 1
            permit.release()
            done += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3


# --- over several processes, through Redis ------------------------------------------------


def _hammer(name: str, account_limits: AccountLimits, calls: int, hold: float, shared: Any):
    """A child process: 4 threads take ``calls`` permits each, hold each ``hold`` s."""
    holding, peak, lock, results = shared
    granted: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        deadline = time.monotonic() + 60
        done = 0
        while done < calls:
            permit = permit_try_acquire(name, account_limits)
            if permit is None:
                if time.monotonic() > deadline:
                    errors.append("no permit within 60 s")
                    return
                time.sleep(min(max(permit_wait_hint(name, account_limits), 0.0005), 0.05))
                continue
            if not permit.shared:
                errors.append("a permit was not counted in Redis")
            with lock:
                holding.value += 1
                peak.value = max(peak.value, holding.value)
            granted.append(permit.granted_at)
            time.sleep(hold)
            with lock:
                holding.value -= 1
            permit.release()
            done += 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((granted, errors))


def run_two_processes(name: str, account_limits: AccountLimits, calls: int, hold: float):
    """Two processes (fork) of four threads each; (grant times on Redis's clock, peak)."""
    context = multiprocessing.get_context("fork")
    shared = (context.Value("i", 0), context.Value("i", 0), context.Lock(), context.Queue())
    processes = [
        context.Process(target=_hammer, args=(name, account_limits, calls, hold, shared))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [shared[3].get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    errors = [error for _, found in outcomes for error in found]
    assert errors == []
    times = sorted(at for granted, _ in outcomes for at in granted)
    assert len(times) == 2 * 4 * calls  # nothing lost
    return times, shared[1].value


@needs_redis
def test_in_flight_cap_holds_over_two_processes_of_four_threads(real_redis):
    cap = AccountLimits(3, WIDE)
    _, peak = run_two_processes(account(), cap, calls=15, hold=0.01)
    assert peak == 3


@needs_redis
def test_rate_holds_over_two_processes_of_four_threads(real_redis):
    rate = AccountLimits(1000, 100)  # one call per 10 ms, burst 10
    times, _ = run_two_processes(account(), rate, calls=25, hold=0.0)
    # GCRA's guarantee, on Redis's clock: any k consecutive grants span at least
    # (k - burst) / rate seconds.
    for i in range(len(times)):
        for j in range(i + rate.burst, len(times)):
            spanned = times[j] - times[i]
            assert j - i + 1 <= rate.burst + spanned * rate.rate_per_second + 1e-6, (i, j)


def _hold_and_die(name: str, account_limits: AccountLimits, lease: float, pipe: Any) -> None:
    permits = [
        permit_try_acquire(name, account_limits, lease_seconds=lease)
        for _ in range(account_limits.max_in_flight)
    ]
    pipe.send([permit is not None and permit.shared for permit in permits])
    os.kill(os.getpid(), signal.SIGKILL)


@needs_redis
def test_permits_of_a_killed_process_free_their_slots_when_their_lease_ends(real_redis):
    name, cap = account(), AccountLimits(2, WIDE)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_hold_and_die, args=(name, cap, 3.0, sender))
    child.start()
    assert receiver.recv() == [True, True]
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL

    assert permit_try_acquire(name, cap) is None  # the dead process's slots are still held
    deadline = time.monotonic() + 30
    permit = None
    while permit is None and time.monotonic() < deadline:
        time.sleep(0.2)
        permit = permit_try_acquire(name, cap)
    assert permit is not None
    assert permit.shared
    assert permit_try_acquire(name, cap) is not None  # both slots came back
    assert permit_try_acquire(name, cap) is None


@needs_redis
def test_a_release_frees_the_slot_in_redis_at_once_and_only_once(real_redis):
    name, cap = account(), AccountLimits(1, WIDE)
    first = permit_try_acquire(name, cap)
    assert first is not None
    assert first.shared
    assert permit_try_acquire(name, cap) is None
    first.release()
    second = permit_try_acquire(name, cap)
    assert second is not None
    first.release()  # again: must not free the slot second holds
    assert permit_try_acquire(name, cap) is None


@needs_redis
def test_a_429_slows_the_account_down_in_every_process(real_redis):
    slowed, other, wide = account(), account(), AccountLimits(10, WIDE)
    account_slow_down(slowed, 5.0)
    account_slow_down(slowed, 0.5)  # shorter: changes nothing
    forget_local_state()  # what this process remembers aside: Redis alone holds it now

    assert permit_try_acquire(slowed, wide) is None
    assert 4.0 < permit_wait_hint(slowed, wide) <= 5.0
    assert permit_try_acquire(other, wide) is not None


def _touch(name: str, account_limits: AccountLimits) -> None:
    permit = permit_try_acquire(name, account_limits)
    assert permit is not None
    permit.release()


def test_with_redis_down_each_process_keeps_to_its_share(redis_behind_proxy):
    name, cap = account(), AccountLimits(4, WIDE)
    # Another process uses the account too: Redis counts two.
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_touch, args=(name, cap))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    _touch(name, cap)

    redis_behind_proxy.cut()
    counted = fail_open_count()
    permits = take(name, cap, 3)
    assert [permit is not None for permit in permits] == [True, True, False]  # 4 // 2
    assert not permits[0].shared
    assert fail_open_count() == counted + 3
    assert permit_wait_hint(name, cap) > 0
    permits[0].release()
    assert permit_try_acquire(name, cap) is not None


def test_with_redis_down_and_never_reached_a_process_takes_the_whole_limits(dead_redis):
    name, cap = account(), AccountLimits(2, WIDE)
    counted = fail_open_count()
    assert [p is not None for p in take(name, cap, 3)] == [True, True, False]
    assert fail_open_count() == counted + 3
    assert gateway_cache.circuit.is_open


def test_mtns_429_reaches_the_caller_with_its_retry_after_and_slows_the_account(
    in_process, sandbox
):
    config = sandbox_client_config(sandbox.base_url)
    client = MtnClient(config, retry_policy=fast_policy(config))
    client.get_token("collection")
    sandbox.set_faults(rate_limit_next=1, retry_after_seconds=4)
    with pytest.raises(MtnRateLimitedError) as caught:
        client.request_to_pay(
            reference_id=uuid.uuid4(),
            amount="10",
            currency="EUR",
            external_id="limits",
            payer_msisdn="46733123450",
            retry=False,
        )
    assert caught.value.retry_after == 4.0
    assert slow_down_after(config.account, caught.value) == 4.0
    assert permit_try_acquire(config.account, AccountLimits(10, WIDE)) is None
    assert sandbox.state.all_transactions() == []  # refused: nothing was created


def test_asking_for_a_wait_hint_takes_nothing(clock):
    one = AccountLimits(1, 10)
    assert permit_wait_hint("a", one) == 0
    assert permit_wait_hint("a", one) == 0
    assert permit_try_acquire("a", one) is not None  # the hints spent neither slot nor rate


@needs_redis
def test_asking_redis_for_a_wait_hint_takes_nothing(real_redis):
    name, one = account(), AccountLimits(1, 10)
    assert permit_wait_hint(name, one) == 0
    assert permit_wait_hint(name, one) == 0
    permit = permit_try_acquire(name, one)
    assert permit is not None
    assert permit.shared
    assert 0 < permit_wait_hint(name, one) <= 0.1  # both: at the cap and 100 ms per call


@needs_redis
def test_a_hint_right_after_a_refusal_needs_no_second_round_trip(real_redis, monkeypatch):
    monkeypatch.setattr(limits, "REFUSAL_MEMORY_SECONDS", 60.0)  # however slow this machine
    name, one = account(), AccountLimits(1, WIDE)
    assert permit_try_acquire(name, one) is not None
    sent = []
    original = Connection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    assert permit_try_acquire(name, one) is None
    assert len(sent) == 1
    assert permit_wait_hint(name, one) == pytest.approx(limits.IN_FLIGHT_POLL_SECONDS, abs=0.01)
    assert len(sent) == 1  # the refusal said how long
    assert permit_wait_hint(name, one) > 0
    assert len(sent) == 2  # once only: a later hint asks Redis
