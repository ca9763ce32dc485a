"""The webhook SSRF guard: resolved once, every address checked, connected to the checked one.

(Issue 19 finding 2.) A name that answers a public address to the check and a loopback one to
the connection (DNS rebinding) must not reach the loopback service; IPv4 written inside IPv6
(NAT64, 6to4, IPv4-compatible, IPv4-mapped) is judged by the IPv4 it carries; the pinned
connection still verifies TLS against the name, sends it as SNI and in ``Host``, and follows
no redirect.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from payments.services import transfer_transition
from shell.worker import Worker
from webhooks.models import DeliveryAttempt, MerchantDelivery
from webhooks.targets import UnsafeTarget, address_refusal, post_pinned, resolve_target

from .conftest import submitted

PUBLIC_IP = "93.184.216.34"


# --- the addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::ffff:169.254.169.254",  # IPv4-mapped
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "64:ff9b:1::5db8:d822",  # local-use NAT64: a network's own translator
        "2001:0:5db8:d822::1",  # Teredo
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "fec0::1",  # site-local (deprecated): Python calls it global
        "4000::1",  # outside 2000::/3, reserved
        "240.0.0.1",
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "224.0.0.251",  # multicast: Python calls it global
        "255.255.255.255",
    ],
)
def test_refused_addresses(text):
    assert address_refusal(ipaddress.ip_address(text)) is not None


@pytest.mark.parametrize(
    "text",
    [
        PUBLIC_IP,
        "2606:4700:4700::1111",
        "64:ff9b::5db8:d822",  # NAT64 of a public address (an IPv6-only network's way out)
        "2002:5db8:d822::1",  # 6to4 of a public address
        "::ffff:93.184.216.34",  # IPv4-mapped public address
    ],
)
def test_public_addresses_in_any_form_are_allowed(text):
    assert address_refusal(ipaddress.ip_address(text)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2002:a9fe:a9fe::1]/latest/meta-data",
        "http://[::a9fe:a9fe]/latest/meta-data",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data",
        "http://[::ffff:127.0.0.1]:8000/hooks",
        "http://2130706433/hooks",  # 127.0.0.1 written as one number
        "http://0x7f.1/hooks",
    ],
)
def test_ipv4_written_inside_ipv6_or_oddly_is_refused_without_a_request(tenant, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    tenant.webhook_url = url
    tenant.save(update_fields=["webhook_url"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as merchant:
        merchant.post(url, status=200)
        succeed(submitted(tenant))
        Worker().run_once()
        assert len(merchant.calls) == 0
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None
    assert "refused address" in attempt.error
    assert MerchantDelivery.objects.get().state == MerchantDelivery.State.PENDING


def test_a_name_with_one_refused_address_among_public_ones_is_refused(monkeypatch):
    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(UnsafeTarget, match="10.0.0.7"):
        resolve_target("https://merchant.example/hooks")


# --- DNS rebinding ----------------------------------------------------------------------------


@dataclass
class Receiver:
    """A local HTTP(S) server that records what reaches it."""

    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve(None)


def _serve(context: ssl.SSLContext | None, status: int = 200) -> Iterator[Receiver]:
    record = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", "0"))
            record.requests.append(
                {
                    "host": self.headers.get("Host"),
                    "path": self.path,
                    "body": self.rfile.read(length),
                }
            )
            self.send_response(status)
            if status == 302:
                self.send_header("Location", f"http://127.0.0.1:{record.port}/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        context.sni_callback = lambda sock, name, ctx: record.server_names.append(name)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    record.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


def succeed(transfer: Any) -> Any:
    return transfer_transition(
        transfer=transfer, target="SUCCESSFUL", actor=_mtn(), financial_transaction_id="555"
    ).transfer


def _mtn() -> Any:
    from gateway.audit import Actor

    return Actor.mtn()


def test_a_name_that_rebinds_to_loopback_after_the_check_is_never_connected_to_loopback(
    tenant, settings, monkeypatch, receiver
):
    """The resolver answers a public address, then 127.0.0.1 (where a service listens): the
    one request goes to the public address that was checked; loopback hears nothing."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    url = f"http://rebind.example:{receiver.port}/hooks"
    tenant.webhook_url = url
    tenant.save(update_fields=["webhook_url"])
    answers = iter([PUBLIC_IP, "127.0.0.1", "127.0.0.1", "127.0.0.1"])
    asked: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host == "rebind.example":
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    connected: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if address[0] == PUBLIC_IP:  # no network here: the public host "refuses"
            connected.append((address[0], address[1]))
            raise ConnectionRefusedError(111, "Connection refused")
        real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    succeed(submitted(tenant))

    Worker().run_once()

    assert receiver.requests == []  # the loopback service heard nothing
    assert connected == [(PUBLIC_IP, receiver.port)]  # the checked address, and only it
    assert asked == ["rebind.example"]  # resolved once
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None
    assert "ConnectionError" in attempt.error
    assert MerchantDelivery.objects.get().state == MerchantDelivery.State.PENDING


def test_when_one_checked_address_refuses_the_next_checked_one_is_used(
    tenant, settings, monkeypatch, receiver
):
    """A name with an IPv6 and an IPv4 address, the first unreachable: the delivery goes to
    the second (a public address standing in for the merchant: the test routes it to the
    local receiver), with the name in Host, after one resolution."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    unreachable, merchant = "2606:4700:4700::1111", PUBLIC_IP
    url = f"http://merchant.example:{receiver.port}/hooks"
    tenant.webhook_url = url
    tenant.save(update_fields=["webhook_url"])
    asked: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host == "merchant.example":
            asked.append(host)
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (unreachable, port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (merchant, port)),
            ]
        return real_getaddrinfo(host, port, *args, **kwargs)

    connected: list[str] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if address[0] == unreachable:
            connected.append(address[0])
            raise OSError(101, "Network is unreachable")
        if address[0] == merchant:
            connected.append(address[0])
            return real_connect(sock, ("127.0.0.1", receiver.port))
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    succeed(submitted(tenant))

    Worker().run_once()

    assert connected == [unreachable, merchant]
    assert asked == ["merchant.example"]
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["host"] == f"merchant.example:{receiver.port}"
    assert MerchantDelivery.objects.get().state == MerchantDelivery.State.SUCCEEDED


# --- the pinned connection --------------------------------------------------------------------


def no_resolution(monkeypatch: Any, name: str) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        assert host != name, f"{name} was resolved again"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_the_pinned_request_carries_the_name_in_host_and_follows_no_redirect(monkeypatch):
    no_resolution(monkeypatch, "merchant.test")
    for record in _serve(None, status=302):
        response = post_pinned(
            f"http://merchant.test:{record.port}/hooks",
            "127.0.0.1",
            data=b'{"id": "evt_1"}',
            headers={"Content-Type": "application/json"},
            timeout=(3.0, 5.0),
        )
        assert response.status_code == 302
        assert record.requests == [
            {"host": f"merchant.test:{record.port}", "path": "/hooks", "body": b'{"id": "evt_1"}'}
        ]


@dataclass
class Certificates:
    ca_file: Path
    context: ssl.SSLContext


def _certificates(tmp_path: Path, name: str) -> Certificates:
    """A CA and a server certificate for ``name`` that it signed."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = tmp_path / "server.pem"
    cert_file.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file)
    return Certificates(ca_file=ca_file, context=context)


def test_tls_to_the_pinned_address_is_verified_against_the_name_with_sni(tmp_path, monkeypatch):
    certificates = _certificates(tmp_path, "merchant.test")
    no_resolution(monkeypatch, "merchant.test")
    for record in _serve(certificates.context):
        response = post_pinned(
            f"https://merchant.test:{record.port}/hooks",
            "127.0.0.1",
            data=b"{}",
            headers={},
            timeout=(3.0, 5.0),
            verify=str(certificates.ca_file),
        )
        assert response.status_code == 200
        assert record.server_names == ["merchant.test"]  # SNI: the name, not the address
        assert record.requests[0]["host"] == f"merchant.test:{record.port}"


def test_tls_to_the_pinned_address_refuses_a_certificate_for_another_name(tmp_path):
    certificates = _certificates(tmp_path, "other.test")
    for record in _serve(certificates.context):
        with pytest.raises(requests.exceptions.SSLError):
            post_pinned(
                f"https://merchant.test:{record.port}/hooks",
                "127.0.0.1",
                data=b"{}",
                headers={},
                timeout=(3.0, 5.0),
                verify=str(certificates.ca_file),
            )
        assert record.requests == []
