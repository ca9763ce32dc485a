"""MTN's sandbox provisioning API (reference section 2), as the MTN SDKs' ``momo-init`` uses it.

``POST /v1_0/apiuser`` registers an API user (a UUID v4 we choose) with its
``providerCallbackHost``; ``POST /v1_0/apiuser/{id}/apikey`` issues its API key, shown once.
Sandbox users are scoped to the product whose subscription key created them (section 2.4),
so each product gets its own user. Speaks only MTN.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field

import requests

from .errors import MtnProtocolError, classify_exception, classify_response, decode_body

# A host name only: no scheme, port, path or IP address (MTN refuses those, section 2.1).
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)


@dataclass(frozen=True)
class ProvisionedUser:
    api_user: str
    api_key: str = field(repr=False)


def check_callback_host(host: str) -> str:
    """``host`` as MTN's providerCallbackHost accepts it; ``ValueError`` says why not."""
    value = host.strip().lower()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValueError("The callback host must be a host name, not an IP address.")
    if not _HOST_RE.match(value):
        raise ValueError(
            "The callback host must be a host name only, such as pay.example.com: no scheme, "
            "port or path."
        )
    return value


def provision_api_user(
    *,
    base_url: str,
    subscription_key: str,
    callback_host: str,
    session: requests.Session | None = None,
    timeout: tuple[float, float] = (3.05, 10.0),
) -> ProvisionedUser:
    """Create an API user and its API key with ``subscription_key``. Raises ``MtnError``."""
    http = session or requests.Session()
    base = base_url.rstrip("/")
    reference = str(uuid.uuid4())
    headers = {"Ocp-Apim-Subscription-Key": subscription_key}
    try:
        created = http.post(
            f"{base}/v1_0/apiuser",
            headers={**headers, "X-Reference-Id": reference},
            json={"providerCallbackHost": callback_host},
            timeout=timeout,
        )
        if created.status_code != 201:
            raise classify_response(created)
        issued = http.post(
            f"{base}/v1_0/apiuser/{reference}/apikey", headers=headers, timeout=timeout
        )
    except requests.RequestException as exc:
        raise classify_exception(exc) from exc
    if issued.status_code != 201:
        raise classify_response(issued)
    body = decode_body(issued)
    api_key = body.get("apiKey") if isinstance(body, dict) else None
    if not isinstance(api_key, str) or not api_key:
        raise MtnProtocolError(
            "UNEXPECTED_RESPONSE", "The API key answer lacks apiKey", status_code=issued.status_code
        )
    return ProvisionedUser(api_user=reference, api_key=api_key)
