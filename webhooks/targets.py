"""Where a merchant webhook may go, and a connection that goes exactly there (SSRF guard).

The host name is resolved once; every address it answers is checked; the request then
connects to the checked address, never resolving the name again (a name that answers a
public address to the check and ``127.0.0.1`` to the connection, DNS rebinding, would
otherwise reach an internal service). TLS is still verified against the name, which is also
sent as SNI and in the ``Host`` header, so the merchant's server sees an ordinary request.

Refused, unless ``WEBHOOK_ALLOW_PRIVATE_TARGETS``: every address that is not global
(private, loopback, link-local, shared, reserved, ...), multicast, and IPv4 addresses written
inside IPv6 that are themselves refused: IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
``::a.b.c.d``, NAT64 ``64:ff9b::/96`` and 6to4 ``2002::/16`` (Python 3.11 calls the last
three global whatever they carry), plus the local-use NAT64 prefix and Teredo outright.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a network's own NAT64
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class UnsafeTarget(Exception):
    """The webhook URL points at an address the gateway must not call."""


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries in one of its written forms, if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        # (::/96 minus :: and ::1, which are judged as themselves.)
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why the gateway must not connect to ``address`` (None: it may)."""
    if address in _NAT64_LOCAL or address in _TEREDO:
        return f"{address} is a translated address of a network's own"
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = address_refusal(inner)
        return f"{address} carries {inner}: {reason}" if reason else None
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_reserved or (
        isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    ):
        return f"{address} is a reserved address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def resolve_target(url: str) -> list[str]:
    """Resolve ``url``'s host once and check every address; the addresses to connect to, in
    the resolver's order of preference.

    Raises ``UnsafeTarget`` saying why when the URL is malformed, the name does not resolve,
    or any of its addresses is refused (a name answering a public and a private address is
    refused: which one a client picks is not ours to guess).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("The webhook URL must be http(s) with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget("The webhook URL has a malformed port.") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget(f"The webhook host does not resolve: {exc}") from exc
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0])
        if "%" in text:  # an IPv6 address with a zone, "fe80::1%eth0": never a public one
            raise UnsafeTarget(f"The webhook host resolves to a scoped address ({text}).")
        address = ipaddress.ip_address(text)
        reason = address_refusal(address)
        if reason:
            raise UnsafeTarget(f"The webhook host resolves to a refused address: {reason}.")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise UnsafeTarget("The webhook host resolves to no address.")
    return addresses


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to one given address whatever the URL's host resolves to.

    The URL keeps its host name: it goes in the ``Host`` header and, over https, in SNI and
    the certificate's hostname check, so TLS is verified against the name, not the address.
    No proxy is used (a proxy would resolve the name again).
    """

    def __init__(self, address: str, **kwargs: Any) -> None:
        self.address = address
        super().__init__(**kwargs)

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Any = None,
        cert: Any = None,
    ) -> Any:
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        hostname = host_params["host"]
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        host_params["host"] = self.address
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        # The pool's host is the address; the server must see the name it serves.
        request.headers["Host"] = urlsplit(request.url).netloc.rsplit("@", 1)[-1]


def connection_refused(exc: requests.RequestException) -> bool:
    """Whether ``exc`` means that no connection was made (so nothing was sent)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def post_pinned(
    url: str,
    address: str,
    *,
    data: bytes,
    headers: dict[str, str],
    timeout: tuple[float, float],
    verify: bool | str = True,
) -> requests.Response:
    """POST to ``url`` over a connection to ``address`` only; redirects are not followed."""
    with requests.Session() as session:
        # No proxies, .netrc or CA bundle from the environment: a .netrc entry would send
        # its password to the merchant, and a proxy would resolve the name again.
        session.trust_env = False
        adapter = PinnedAddressAdapter(address, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session.post(
            url,
            data=data,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            verify=verify,
        )
