"""MtnClient against MTN-shaped payloads mocked with ``responses``."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
import responses
from responses import matchers

from mtn.client import Balance, MtnClient, SubmitResult, sanitize_text
from mtn.errors import (
    MtnAuthenticationError,
    MtnConfigurationError,
    MtnNotFoundError,
    MtnRateLimitedError,
    MtnRetryableError,
)
from mtn.retry import RetryPolicy

from .conftest import UNIT_BASE_URL

RTP_URL = f"{UNIT_BASE_URL}/collection/v1_0/requesttopay"
TRANSFER_URL = f"{UNIT_BASE_URL}/disbursement/v1_0/transfer"
COLLECTION_TOKEN_URL = f"{UNIT_BASE_URL}/collection/token/"
DISBURSEMENT_TOKEN_URL = f"{UNIT_BASE_URL}/disbursement/token/"
TOKEN_BODY = {"access_token": "tok-1", "token_type": "access_token", "expires_in": 3600}


def add_token(url: str = COLLECTION_TOKEN_URL, token: str = "tok-1", expires_in: int = 3600):  # noqa: S107
    return responses.add(
        responses.POST,
        url,
        json={"access_token": token, "token_type": "access_token", "expires_in": expires_in},
    )


def pay(client: MtnClient, ref: uuid.UUID, **overrides) -> SubmitResult:
    values = {
        "reference_id": ref,
        "amount": "1000",
        "currency": "EUR",
        "external_id": "pay_123",
        "payer_msisdn": "256772123456",
        "payer_message": "Order 42",
        "payee_note": "Shop",
        "callback_url": None,
    }
    values.update(overrides)
    return client.request_to_pay(**values)


def calls_to(url: str) -> list:
    return [c for c in responses.calls if c.request.url == url]


@responses.activate
def test_request_to_pay_202_sends_mtn_headers_and_string_body(unit_client):
    add_token()
    responses.add(responses.POST, RTP_URL, status=202)
    ref = uuid.uuid4()

    result = pay(unit_client, ref)

    assert result == SubmitResult(already_existed=False)
    request = calls_to(RTP_URL)[0].request
    assert request.headers["X-Reference-Id"] == str(ref)
    assert request.headers["X-Target-Environment"] == "sandbox"
    assert request.headers["Ocp-Apim-Subscription-Key"] == "col-sub-key"
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert "X-Callback-Url" not in request.headers
    assert json.loads(request.body) == {
        "amount": "1000",
        "currency": "EUR",
        "externalId": "pay_123",
        "payer": {"partyIdType": "MSISDN", "partyId": "256772123456"},
        "payerMessage": "Order 42",
        "payeeNote": "Shop",
    }


@responses.activate
def test_token_request_uses_basic_auth_and_subscription_key_without_body(unit_client):
    add_token()
    responses.add(responses.POST, RTP_URL, status=202)

    pay(unit_client, uuid.uuid4())

    token_request = calls_to(COLLECTION_TOKEN_URL)[0].request
    assert token_request.headers["Authorization"].startswith("Basic ")
    assert token_request.headers["Ocp-Apim-Subscription-Key"] == "col-sub-key"
    assert not token_request.body


@responses.activate
def test_callback_url_sent_only_when_given(unit_client):
    add_token()
    responses.add(responses.POST, RTP_URL, status=202)

    pay(unit_client, uuid.uuid4(), callback_url="https://pay.example.com/api/v1/webhooks/mtn/t")
    pay(unit_client, uuid.uuid4(), callback_url="")

    first, second = calls_to(RTP_URL)
    assert first.request.headers["X-Callback-Url"] == (
        "https://pay.example.com/api/v1/webhooks/mtn/t"
    )
    assert "X-Callback-Url" not in second.request.headers


@responses.activate
def test_empty_messages_are_omitted_and_bad_characters_stripped(unit_client):
    add_token()
    responses.add(responses.POST, RTP_URL, status=202)

    pay(unit_client, uuid.uuid4(), payer_message="Tom's  shoes & socks", payee_note="&&''")

    body = json.loads(calls_to(RTP_URL)[0].request.body)
    assert body["payerMessage"] == "Toms shoes socks"
    assert "payeeNote" not in body


def test_sanitize_text_truncates_to_160_and_keeps_accents():
    assert sanitize_text("é" * 200) == "é" * 160
    assert sanitize_text("Café <b>crème</b> 'n' more;") == "Café bcrème/b n more"
    assert sanitize_text("   ") is None
    assert sanitize_text(None) is None


@responses.activate
def test_409_for_our_reference_means_already_existed(unit_client):
    add_token()
    responses.add(
        responses.POST,
        RTP_URL,
        status=409,
        json={
            "message": "Duplicated reference id. Creation of resource failed.",
            "code": "RESOURCE_ALREADY_EXIST",
        },
    )

    assert pay(unit_client, uuid.uuid4()) == SubmitResult(already_existed=True)


@responses.activate
def test_retryable_errors_retry_with_the_same_reference_then_succeed(unit_client, sleeps):
    add_token()
    responses.add(
        responses.POST,
        RTP_URL,
        status=503,
        json={"code": "SERVICE_UNAVAILABLE", "message": "Service temporarily unavailable"},
    )
    responses.add(responses.POST, RTP_URL, status=500, json={"code": "INTERNAL_PROCESSING_ERROR"})
    responses.add(responses.POST, RTP_URL, status=202)
    ref = uuid.uuid4()

    assert pay(unit_client, ref) == SubmitResult(already_existed=False)

    posts = calls_to(RTP_URL)
    assert len(posts) == 3
    assert {c.request.headers["X-Reference-Id"] for c in posts} == {str(ref)}
    assert len({c.request.body for c in posts}) == 1
    assert len(sleeps.waits) == 2
    assert len(calls_to(COLLECTION_TOKEN_URL)) == 1


@responses.activate
def test_lost_answer_then_409_on_retry_is_already_existed(unit_client):
    import requests

    add_token()
    responses.add(responses.POST, RTP_URL, body=requests.ReadTimeout("read timed out"))
    responses.add(responses.POST, RTP_URL, status=409, json={"code": "RESOURCE_ALREADY_EXIST"})
    ref = uuid.uuid4()

    assert pay(unit_client, ref) == SubmitResult(already_existed=True)
    assert [c.request.headers["X-Reference-Id"] for c in calls_to(RTP_URL)] == [str(ref)] * 2


@responses.activate
def test_retries_stop_at_max_tries_and_raise_last_error(unit_client, sleeps):
    add_token()
    for _ in range(5):
        responses.add(responses.POST, RTP_URL, status=502)

    with pytest.raises(MtnRetryableError) as info:
        pay(unit_client, uuid.uuid4())

    assert info.value.code == "HTTP_502"
    assert len(calls_to(RTP_URL)) == 3
    assert len(sleeps.waits) == 2


@responses.activate
def test_retry_false_makes_exactly_one_attempt(unit_client, sleeps):
    add_token()
    responses.add(responses.POST, RTP_URL, status=503, json={"code": "SERVICE_UNAVAILABLE"})
    responses.add(responses.POST, RTP_URL, status=202)

    with pytest.raises(MtnRetryableError):
        pay(unit_client, uuid.uuid4(), retry=False)

    assert len(calls_to(RTP_URL)) == 1
    assert sleeps.waits == []


@responses.activate
def test_network_error_with_retry_false_raises_retryable(unit_client):
    import requests

    add_token()
    responses.add(responses.POST, RTP_URL, body=requests.ConnectionError("refused"))

    with pytest.raises(MtnRetryableError) as info:
        pay(unit_client, uuid.uuid4(), retry=False)

    assert info.value.code == "NETWORK_ERROR"


@pytest.mark.parametrize(
    "code",
    [
        "NOT_ALLOWED",
        "NOT_ALLOWED_TARGET_ENVIRONMENT",
        "INVALID_CALLBACK_URL_HOST",
        "INVALID_CURRENCY",
    ],
)
@responses.activate
def test_configuration_500s_are_not_retried(unit_client, sleeps, code):
    add_token()
    responses.add(responses.POST, RTP_URL, status=500, json={"code": code, "message": "no"})

    with pytest.raises(MtnConfigurationError) as info:
        pay(unit_client, uuid.uuid4())

    assert info.value.code == code
    assert len(calls_to(RTP_URL)) == 1
    assert sleeps.waits == []


@responses.activate
def test_plain_4xx_is_not_retried(unit_client, sleeps):
    add_token()
    responses.add(responses.POST, RTP_URL, status=400)

    with pytest.raises(Exception) as info:
        pay(unit_client, uuid.uuid4())

    assert info.value.retryable is False
    assert len(calls_to(RTP_URL)) == 1


@responses.activate
def test_retry_after_is_honoured(unit_client, sleeps):
    add_token()
    responses.add(
        responses.POST,
        RTP_URL,
        status=429,
        headers={"Retry-After": "2"},
        json={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 2 seconds."},
    )
    responses.add(responses.POST, RTP_URL, status=202)

    assert pay(unit_client, uuid.uuid4()) == SubmitResult(already_existed=False)

    assert len(sleeps.waits) == 1
    assert sleeps.waits[0] >= 2.0


@responses.activate
def test_retry_after_beyond_the_time_budget_gives_up_at_once(unit_client, sleeps):
    add_token()
    responses.add(responses.POST, RTP_URL, status=429, headers={"Retry-After": "60"})
    responses.add(responses.POST, RTP_URL, status=202)

    with pytest.raises(MtnRateLimitedError) as info:
        pay(unit_client, uuid.uuid4())

    assert info.value.retry_after == 60.0
    assert len(calls_to(RTP_URL)) == 1
    assert sleeps.waits == []


def test_backoff_waits_are_full_jitter_and_capped():
    import random

    from mtn.errors import MtnRetryableError as Err

    waits: list[float] = []
    attempts: list[int] = []
    policy = RetryPolicy(
        max_tries=6,
        max_seconds=60,
        base_delay=1.0,
        max_delay=4.0,
        sleep=waits.append,
        rng=random.Random(3),
    )

    def always_fail():
        attempts.append(1)
        raise Err("SERVICE_UNAVAILABLE")

    with pytest.raises(Err):
        policy.run(always_fail)

    assert len(attempts) == 6
    assert len(waits) == 5
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(0 <= w <= c for w, c in zip(waits, ceilings, strict=True))


@responses.activate
def test_status_404_raises_not_found(unit_client, sleeps):
    add_token()
    ref = uuid.uuid4()
    responses.add(
        responses.GET,
        f"{RTP_URL}/{ref}",
        status=404,
        json={"message": "Requested resource was not found.", "code": "RESOURCE_NOT_FOUND"},
    )

    with pytest.raises(MtnNotFoundError):
        unit_client.request_to_pay_status(reference_id=ref)

    assert sleeps.waits == []


@responses.activate
def test_status_reads_mtn_body(unit_client):
    add_token()
    ref = uuid.uuid4()
    responses.add(
        responses.GET,
        f"{RTP_URL}/{ref}",
        match=[matchers.header_matcher({"X-Target-Environment": "sandbox"})],
        json={
            "amount": "12.5",
            "currency": "EUR",
            "financialTransactionId": 363440463,
            "externalId": "pay_123",
            "payer": {"partyIdType": "MSISDN", "partyId": "46733123450"},
            "status": "FAILED",
            "reason": "INTERNAL_PROCESSING_ERROR",
        },
    )

    status = unit_client.request_to_pay_status(reference_id=ref)

    assert status.status == "FAILED"
    assert status.is_final
    assert status.amount == Decimal("12.50")
    assert status.financial_transaction_id == "363440463"
    assert status.reason_code == "INTERNAL_PROCESSING_ERROR"
    assert status.party_id == "46733123450"


@responses.activate
def test_transfer_uses_disbursement_credentials_and_payee(unit_client):
    add_token(DISBURSEMENT_TOKEN_URL, token="dis-tok")
    responses.add(responses.POST, TRANSFER_URL, status=202)
    ref = uuid.uuid4()

    result = unit_client.transfer(
        reference_id=ref,
        amount="50",
        currency="EUR",
        external_id="po_1",
        payee_msisdn="46733123459",
        payer_message=None,
        payee_note=None,
        callback_url=None,
    )

    assert result.already_existed is False
    request = calls_to(TRANSFER_URL)[0].request
    assert request.headers["Ocp-Apim-Subscription-Key"] == "dis-sub-key"
    assert request.headers["Authorization"] == "Bearer dis-tok"
    assert json.loads(request.body)["payee"] == {"partyIdType": "MSISDN", "partyId": "46733123459"}
    assert "payerMessage" not in json.loads(request.body)


@responses.activate
def test_transfer_status_uses_transfer_path(unit_client):
    add_token(DISBURSEMENT_TOKEN_URL)
    ref = uuid.uuid4()
    responses.add(
        responses.GET,
        f"{TRANSFER_URL}/{ref}",
        json={
            "amount": 50,
            "currency": "EUR",
            "externalId": "po_1",
            "status": "SUCCESSFUL",
            "payee": {"partyIdType": "MSISDN", "partyId": "256700000001"},
        },
    )

    status = unit_client.transfer_status(reference_id=ref)

    assert status.status == "SUCCESSFUL"
    assert status.party_id == "256700000001"


@responses.activate
def test_account_balance_and_holder_active(unit_client):
    add_token()
    responses.add(
        responses.GET,
        f"{UNIT_BASE_URL}/collection/v1_0/account/balance",
        json={"availableBalance": "1500.75", "currency": "EUR"},
    )
    responses.add(
        responses.GET,
        f"{UNIT_BASE_URL}/collection/v1_0/accountholder/msisdn/46733123451/active",
        json={"result": False},
    )

    assert unit_client.account_balance() == Balance(Decimal("1500.75"), "EUR")
    assert unit_client.account_holder_active(msisdn="46733123451") is False


# --- tokens ---------------------------------------------------------------------------------


@responses.activate
def test_one_token_call_serves_many_product_calls(unit_client):
    add_token()
    responses.add(responses.POST, RTP_URL, status=202)

    for _ in range(5):
        pay(unit_client, uuid.uuid4())

    assert len(calls_to(COLLECTION_TOKEN_URL)) == 1
    assert len(calls_to(RTP_URL)) == 5


@responses.activate
def test_tokens_are_cached_per_product(unit_client):
    add_token(COLLECTION_TOKEN_URL, "col")
    add_token(DISBURSEMENT_TOKEN_URL, "dis")

    assert unit_client.get_token("collection") == "col"
    assert unit_client.get_token("disbursement") == "dis"
    assert unit_client.get_token("collection") == "col"
    assert len(responses.calls) == 2


def test_token_is_refreshed_before_expiry():
    from mtn.tokens import token_lifetime as _token_lifetime

    assert _token_lifetime(3600) == 3000  # ten minutes early, as MTN advises
    assert _token_lifetime(60) == 30  # short lifetimes: half
    assert _token_lifetime("3600") == 3000
    assert _token_lifetime(None) == 3000
    assert _token_lifetime(0) == 0


@responses.activate
def test_token_expiry_triggers_a_new_token(unit_client):
    import time

    add_token(expires_in=2)  # cached for 1 s
    add_token(token="tok-2")

    assert unit_client.get_token("collection") == "tok-1"
    assert unit_client.get_token("collection") == "tok-1"
    time.sleep(1.1)
    assert unit_client.get_token("collection") == "tok-2"


@responses.activate
def test_401_without_status_code_refreshes_token_once_and_retries(unit_client):
    add_token(token="old")
    add_token(token="new")
    responses.add(responses.POST, RTP_URL, status=401, json={"error": "invalid_token"})
    responses.add(responses.POST, RTP_URL, status=202)
    ref = uuid.uuid4()

    assert pay(unit_client, ref, retry=False).already_existed is False

    posts = calls_to(RTP_URL)
    assert [c.request.headers["Authorization"] for c in posts] == ["Bearer old", "Bearer new"]
    assert [c.request.headers["X-Reference-Id"] for c in posts] == [str(ref)] * 2
    assert len(calls_to(COLLECTION_TOKEN_URL)) == 2
    assert unit_client.get_token("collection") == "new"


@responses.activate
def test_401_twice_refreshes_only_once(unit_client):
    add_token(token="old")
    add_token(token="new")
    responses.add(responses.POST, RTP_URL, status=401, body=b"")
    responses.add(responses.POST, RTP_URL, status=401, body=b"")

    with pytest.raises(MtnAuthenticationError):
        pay(unit_client, uuid.uuid4())

    assert len(calls_to(RTP_URL)) == 2
    assert len(calls_to(COLLECTION_TOKEN_URL)) == 2


@responses.activate
def test_401_with_status_code_is_a_key_problem_and_not_refreshed(unit_client):
    add_token()
    responses.add(
        responses.POST,
        RTP_URL,
        status=401,
        json={"statusCode": 401, "message": "Access denied due to invalid subscription key."},
    )

    with pytest.raises(MtnAuthenticationError) as info:
        pay(unit_client, uuid.uuid4())

    assert info.value.status_code == 401
    assert len(calls_to(RTP_URL)) == 1
    assert len(calls_to(COLLECTION_TOKEN_URL)) == 1


@responses.activate
def test_login_failed_on_token_is_not_retried(unit_client):
    responses.add(responses.POST, COLLECTION_TOKEN_URL, status=500, json={"error": "login_failed"})

    with pytest.raises(MtnAuthenticationError) as info:
        pay(unit_client, uuid.uuid4())

    assert info.value.code == "login_failed"
    assert len(calls_to(COLLECTION_TOKEN_URL)) == 1
    assert calls_to(RTP_URL) == []


@responses.activate
def test_secrets_never_appear_in_logs(unit_client, caplog):
    caplog.set_level("DEBUG")
    add_token(token="super-secret-token")
    responses.add(responses.POST, RTP_URL, status=503)
    responses.add(responses.POST, RTP_URL, status=202)

    pay(unit_client, uuid.uuid4())

    assert "super-secret-token" not in caplog.text
    assert "col-api-key" not in caplog.text
    assert "col-sub-key" not in caplog.text


def test_every_call_has_explicit_timeouts_and_verified_tls(unit_config):
    seen: list[dict] = []

    class Session:
        verify = False

        def request(self, method, url, **kwargs):
            seen.append(kwargs)
            raise __import__("requests").ConnectionError("no network in this test")

        def post(self, url, **kwargs):
            seen.append(kwargs)
            return type(
                "R",
                (),
                {
                    "status_code": 200,
                    "content": json.dumps(TOKEN_BODY).encode(),
                    "json": lambda self: TOKEN_BODY,
                    "headers": {},
                },
            )()

    session = Session()
    client = MtnClient(unit_config, session=session, retry_policy=RetryPolicy(max_tries=1))

    with pytest.raises(MtnRetryableError):
        pay(client, uuid.uuid4())

    assert session.verify is True
    assert all(kwargs["timeout"] == (1.0, 2.0) for kwargs in seen)
    assert all("verify" not in kwargs for kwargs in seen)
