"""The chaos stack as a fixture: on PostgreSQL only, torn down (and its database dropped)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.chaos.stack import ChaosStack, postgres_url


@pytest.fixture
def chaos_stack(tmp_path) -> Iterator[Callable[..., ChaosStack]]:
    """Start a stack with the given seed and faults; everything is stopped afterwards."""
    base_url = postgres_url()
    if base_url is None:
        pytest.skip("chaos tests need PostgreSQL: set DATABASE_URL=postgres://...")
    stacks: list[ChaosStack] = []

    def start(
        *, seed: int, faults: dict, proxied: bool = False, two_markets: bool = False
    ) -> ChaosStack:
        stack = ChaosStack(
            workdir=tmp_path, seed=seed, faults=faults, proxied=proxied, two_markets=two_markets
        )
        stacks.append(stack)
        stack.start(base_url)
        return stack

    yield start
    for stack in stacks:
        stack.close()
