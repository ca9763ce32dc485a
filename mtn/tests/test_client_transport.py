"""What the MTN client puts on the wire, and how: one kept-alive connection per account and
thread, the same headers and body as requests' ``Session.request`` sent, no redirects."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from mtn.client import MtnClient, MtnConfig, MtnCredentials, client_for
from mtn.errors import MtnNetworkError, MtnProtocolError
from mtn.retry import RetryPolicy

TOKEN = {"access_token": "tok-wire", "token_type": "access_token", "expires_in": 3600}
STATUS = {
    "amount": "10",
    "currency": "EUR",
    "externalId": "wire",
    "payer": {"partyIdType": "MSISDN", "partyId": "46733123450"},
    "status": "PENDING",
}


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.redirect = False
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as MTN's front door
    server: Recorder

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(
            Seen(self.command, self.path, dict(self.headers.items()), body, self.client_address[1])
        )
        if self.server.redirect:
            self._reply(302, b"", {"Location": "/elsewhere"})
        elif self.path.endswith("/token/"):
            self._reply(200, json.dumps(TOKEN).encode(), {"Content-Type": "application/json"})
        elif self.command == "POST":
            self._reply(202, b"", {})
        else:
            self._reply(200, json.dumps(STATUS).encode(), {"Content-Type": "application/json"})

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def wire_config(base_url: str, **changes) -> MtnConfig:
    return dataclasses.replace(
        MtnConfig(
            base_url=base_url,
            target_environment="sandbox",
            collection=MtnCredentials("col-sub", "col-user", "col-key"),
            disbursement=None,
            connect_timeout=1.0,
            read_timeout=2.0,
            max_tries=1,
            account=f"wire-{uuid.uuid4().hex[:6]}",
        ),
        **changes,
    )


def submit(client: MtnClient, **overrides) -> uuid.UUID:
    reference = uuid.uuid4()
    values = {
        "reference_id": reference,
        "amount": "10",
        "currency": "EUR",
        "external_id": "wire",
        "payer_msisdn": "46733123450",
        "payer_message": "Order 7",
        "retry": False,
    }
    values.update(overrides)
    client.request_to_pay(**values)
    return reference


def test_the_wire_carries_what_requests_sent(recorder):
    client = MtnClient(wire_config(recorder.base_url))
    reference = submit(client)

    token, post = recorder.seen
    assert (token.method, token.path) == ("POST", "/collection/token/")
    assert token.headers["Authorization"] == "Basic " + base64.b64encode(
        b"col-user:col-key"
    ).decode("ascii")
    assert token.headers["Ocp-Apim-Subscription-Key"] == "col-sub"
    assert token.headers["Content-Length"] == "0"
    assert token.body == b""

    assert (post.method, post.path) == ("POST", "/collection/v1_0/requesttopay")
    expected_body = {
        "amount": "10",
        "currency": "EUR",
        "externalId": "wire",
        "payer": {"partyIdType": "MSISDN", "partyId": "46733123450"},
        "payerMessage": "Order 7",
    }
    # Byte for byte what requests' json= sent: the stdlib's separators, UTF-8.
    assert post.body == json.dumps(expected_body).encode()
    assert post.headers["Content-Length"] == str(len(post.body))
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Authorization"] == "Bearer tok-wire"
    assert post.headers["X-Reference-Id"] == str(reference)
    assert post.headers["X-Target-Environment"] == "sandbox"
    assert post.headers["Ocp-Apim-Subscription-Key"] == "col-sub"
    # The session's own headers still go out.
    assert post.headers["User-Agent"] == requests.utils.default_user_agent()
    assert post.headers["Accept"] == "*/*"
    assert "X-Callback-Url" not in post.headers


def test_calls_share_one_kept_alive_connection_per_account_and_thread(recorder):
    config = wire_config(recorder.base_url)
    client = client_for(config)
    quick = client_for(dataclasses.replace(config, read_timeout=1.5))
    assert quick is not client
    assert quick.session is client.session  # same account: one pool in this thread

    for _ in range(5):
        submit(client)
        client.request_to_pay_status(reference_id=submit(quick), retry=False)

    assert len(recorder.seen) == 1 + 15
    assert len({seen.client_port for seen in recorder.seen}) == 1

    other: list[MtnClient] = []
    thread = threading.Thread(target=lambda: other.append(client_for(config)))
    thread.start()
    thread.join()
    assert other[0].session is not client.session  # a session is never shared by threads
    assert client_for(wire_config(recorder.base_url)).session is not client.session


def test_a_redirect_is_never_followed(recorder):
    client = MtnClient(wire_config(recorder.base_url), retry_policy=RetryPolicy(max_tries=1))
    client.get_token("collection")
    recorder.redirect = True
    with pytest.raises(MtnProtocolError) as caught:
        submit(client)
    assert caught.value.status_code == 302
    assert [seen.path for seen in recorder.seen] == [
        "/collection/token/",
        "/collection/v1_0/requesttopay",
    ]


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(recorder):
    client = MtnClient(wire_config(recorder.base_url))
    client.get_token("collection")
    with pytest.raises(MtnNetworkError):
        submit(client, callback_url="https://pay.example.com/\r\nX-Injected: 1")
    assert [seen.path for seen in recorder.seen] == ["/collection/token/"]


def test_a_session_that_is_not_plain_requests_is_still_called_through_request(recorder):
    session = requests.Session()
    session.hooks["response"].append(lambda response, **kwargs: response)
    client = MtnClient(wire_config(recorder.base_url), session=session)
    hooked: list[str] = []
    session.hooks["response"].append(lambda response, **kwargs: hooked.append(response.url))

    submit(client)

    assert len(hooked) == 2  # the token and the submission, both through Session.request
    assert recorder.seen[1].headers["Content-Length"] == str(len(recorder.seen[1].body))
