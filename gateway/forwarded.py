"""The client's address as the gateway may believe it: ``X-Forwarded-For`` only from a proxy
listed in ``FORWARDED_ALLOW_IPS`` (gunicorn's own variable, read by the settings too).

Behind a proxy every connection comes from the proxy, so counting per connection address
would lump every client together; trusting the header from anyone would let a client name
any address it likes. The header is read from the right: each trusted proxy appends the
address it saw, and the first address that is not a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[bool, tuple[Network, ...]]:
    """(trust every peer, the trusted networks) of ``FORWARDED_ALLOW_IPS``'s entries."""
    if "*" in entries:
        return True, ()
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # gunicorn also takes host names here; they cannot match an address
    return False, tuple(networks)


def _is_trusted_proxy(text: str) -> bool:
    every, networks = _trusted(tuple(settings.FORWARDED_ALLOW_IPS))
    if every:
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """The address of the client behind any trusted proxies ('' if the server gave none)."""
    peer = str(request.META.get("REMOTE_ADDR", "") or "")
    if not _is_trusted_proxy(peer):
        return peer
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", "") or "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if hops and _trusted(tuple(settings.FORWARDED_ALLOW_IPS))[0]:
        hops = hops[-1:]  # "*": believe the nearest proxy only, not what the client wrote
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # not what a proxy writes: believe only the connection
        if not _is_trusted_proxy(hop):
            return hop
    # Every hop is a trusted proxy (or there is no header): the first one is the client.
    return hops[0] if hops else peer
