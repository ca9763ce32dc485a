"""Sandbox user provisioning, ``/v1_0/apiuser`` (reference section 2), as the ``momo-init``
tool of MTN's SDKs drives it: create a user, create its key, read the user back.

Only the sandbox has this API; a simulator running as a production market answers 404
here, as MTN's production host does (laravel-mtn-momo#49).
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import TYPE_CHECKING, Any

from .auth import check_subscription_key, product_of_key, subscription_key
from .state import ApiUser
from .wire import Reply, bad_request, error, is_uuid, is_uuid4, json_or_none, not_found_path

if TYPE_CHECKING:
    from .app import Sandbox


def route(
    sim: Sandbox,
    method: str,
    rest: list[str],
    headers: Any,
    body: bytes,
    query: dict[str, list[str]] | None = None,
) -> Reply:
    """``rest`` is the path after ``/v1_0/apiuser``."""
    if not sim.config.provisioning_enabled:
        return not_found_path()
    key_reply = check_subscription_key(sim, headers, None, query)
    if key_reply:
        return key_reply
    if rest and not is_uuid(rest[0]):
        # The API user id in the path is a UUID; anything else is MTN's 400, not a 404.
        return bad_request("The API user id must be a UUID.")
    if not rest and method == "POST":
        return _create_user(sim, subscription_key(headers, query or {}), headers, body)
    if len(rest) == 2 and rest[1] == "apikey" and method == "POST":
        return _create_api_key(sim, rest[0])
    if len(rest) == 1 and method == "GET":
        return _read_user(sim, rest[0])
    return not_found_path()


def _create_user(sim: Sandbox, key: str | None, headers: Any, body: bytes) -> Reply:
    product = product_of_key(sim, key)
    ref = headers.get("X-Reference-Id") or ""
    if not is_uuid4(ref):
        return bad_request("X-Reference-Id must be a UUID version 4.")
    data = json_or_none(body)
    host = data.get("providerCallbackHost") if isinstance(data, dict) else None
    problem = _callback_host_problem(host)
    if problem:
        return bad_request(problem)
    assert isinstance(host, str)  # noqa: S101 - narrowed by _callback_host_problem
    ref = ref.lower()
    with sim.state.lock:
        if ref in sim.state.users:
            return error(409, "RESOURCE_ALREADY_EXIST", "Conflict, duplicated reference id.")
        # The user is scoped to the product whose key created it (section 2.4).
        sim.state.users[ref] = ApiUser(ref, {product or ""}, set(), host, provisioned=True)
    return Reply(201)


def _callback_host_problem(host: Any) -> str | None:
    """providerCallbackHost is a bare host name: no scheme, port or path (section 2.1).

    MTN refuses IP addresses too; a loopback address is let through so that a gateway on
    this machine can be provisioned against the simulator.
    """
    if not isinstance(host, str) or not host.strip():
        return "providerCallbackHost is required."
    if any(char in host for char in "/:?#@ ") or host != host.strip():
        return "providerCallbackHost must be a host name, without scheme, port or path."
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_loopback:
        return "providerCallbackHost must be a host name, not an IP address."
    return None


def _create_api_key(sim: Sandbox, user_id: str) -> Reply:
    with sim.state.lock:
        user = sim.state.users.get(user_id.lower())
        if user is None:
            return error(404, "RESOURCE_NOT_FOUND")
        api_key = secrets.token_hex(16)
        if user.provisioned:
            # A new key replaces the old one (shown once, section 2.2).
            user.api_keys = {api_key}
        else:
            user.api_keys.add(api_key)
    return Reply(201, {"apiKey": api_key})


def _read_user(sim: Sandbox, user_id: str) -> Reply:
    with sim.state.lock:
        user = sim.state.users.get(user_id.lower())
    if user is None:
        return error(404, "RESOURCE_NOT_FOUND")
    return Reply(
        200,
        {
            "providerCallbackHost": user.callback_host or "",
            "targetEnvironment": sim.config.target_environment,
        },
    )
