"""Two simulators at once, as two MTN markets with different credentials: each account's
client reaches only its own market, with its own keys, tokens and target environment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from mtn.client import MtnClient, MtnConfig, MtnCredentials, check_account
from mtn.errors import MtnNotFoundError
from mtn.retry import RetryPolicy
from mtn.sandbox import ProductCredentials, SandboxConfig, SandboxHandle, start_sandbox

from .conftest import CALLBACK_HOST, CallbackReceiver

pytestmark = pytest.mark.e2e

GH_COLLECTION = MtnCredentials("gh-col-key", "3c1e9a70-5b2d-4f8e-a1c3-9d7e5f3b1a20", "gh-col")
GH_DISBURSEMENT = MtnCredentials("gh-dis-key", "8e2d4c6b-1a3f-4e5d-b7c9-0f1e2d3c4b5a", "gh-dis")


def as_simulator(creds: MtnCredentials) -> ProductCredentials:
    return ProductCredentials(creds.subscription_key, creds.api_user, creds.api_key)


@pytest.fixture
def markets() -> Iterator[tuple[SandboxHandle, SandboxHandle]]:
    sandbox = start_sandbox(
        SandboxConfig(delay_seconds=0.1, seed=1, provider_callback_host=CALLBACK_HOST)
    )
    ghana = start_sandbox(
        SandboxConfig(delay_seconds=0.1, seed=2, provider_callback_host=CALLBACK_HOST),
        target_environment="mtnghana",
        collection=as_simulator(GH_COLLECTION),
        disbursement=as_simulator(GH_DISBURSEMENT),
    )
    yield sandbox, ghana
    ghana.stop()
    sandbox.stop()


def client(config: MtnConfig) -> MtnClient:
    return MtnClient(config, retry_policy=RetryPolicy(max_tries=2, base_delay=0.01))


def accounts(sandbox: SandboxHandle, ghana: SandboxHandle) -> tuple[MtnConfig, MtnConfig]:
    platform = MtnConfig.for_account(
        account="default",
        base_url=sandbox.base_url,
        target_environment="sandbox",
        collection=MtnConfig.from_settings().collection,
        disbursement=MtnConfig.from_settings().disbursement,
    )
    tenant_ghana = MtnConfig.for_account(
        account="acme-ghana",
        base_url=ghana.base_url,
        target_environment="mtnghana",
        collection=GH_COLLECTION,
        disbursement=GH_DISBURSEMENT,
    )
    return platform, tenant_ghana


def collect(mtn: MtnClient, currency: str, callback_url: str | None = None) -> uuid.UUID:
    ref = uuid.uuid4()
    mtn.request_to_pay(
        reference_id=ref,
        amount="25",
        currency=currency,
        external_id=f"pay-{currency}",
        payer_msisdn="233241234567",
        callback_url=callback_url,
    )
    return ref


def test_each_market_receives_only_its_accounts_calls_with_its_headers(
    markets, callback_receiver: CallbackReceiver
):
    sandbox, ghana = markets
    platform, tenant_ghana = accounts(sandbox, ghana)
    eur, ghs = client(platform), client(tenant_ghana)
    hook = callback_receiver.base_url

    eur_payment = collect(eur, "EUR", f"{hook}/cb/eur")
    ghs_payment = collect(ghs, "GHS", f"{hook}/cb/ghs")
    ghs_refund = uuid.uuid4()
    ghs.refund(
        reference_id=ghs_refund,
        amount="10",
        currency="GHS",
        external_id="rf-ghs",
        reference_id_to_refund=ghs_payment,
        callback_url=f"{hook}/cb/ghs-refund",
    )
    name = ghs.basic_user_info(msisdn="233241234567").name
    callbacks = callback_receiver.wait_for(3)

    # Which market holds what.
    assert [t["reference_id"] for t in sandbox.state.all_transactions()] == [str(eur_payment)]
    assert {t["reference_id"] for t in ghana.state.all_transactions()} == {
        str(ghs_payment),
        str(ghs_refund),
    }
    assert ghana.state.transaction(ghs_refund)["reference_id_to_refund"] == str(ghs_payment)
    assert eur.request_to_pay_status(reference_id=eur_payment).currency == "EUR"
    assert ghs.refund_status(reference_id=ghs_refund).status == "SUCCESSFUL"
    assert name == "David Phiri"  # the simulator's fixed name for this number

    # With which headers: each market saw only its own keys, users and environment.
    expected = {
        sandbox: (
            "sandbox",
            {settings.MTN_COLLECTION_SUBSCRIPTION_KEY},
            {settings.MTN_COLLECTION_API_USER},
        ),
        ghana: (
            "mtnghana",
            {GH_COLLECTION.subscription_key, GH_DISBURSEMENT.subscription_key},
            {GH_COLLECTION.api_user, GH_DISBURSEMENT.api_user},
        ),
    }
    for handle, (environment, keys, users) in expected.items():
        log = handle.state.request_log()
        assert log
        assert {entry["status"] for entry in log} <= {200, 202}
        assert {entry["headers"]["Ocp-Apim-Subscription-Key"] for entry in log} == keys
        product_calls = [entry for entry in log if "/token/" not in entry["path"]]
        assert {entry["headers"]["X-Target-Environment"] for entry in product_calls} == {
            environment
        }
        assert {entry["auth"] for entry in product_calls} == {"Bearer"}
        token_calls = [entry for entry in log if "/token/" in entry["path"]]
        assert {entry["auth"] for entry in token_calls} == {f"Basic {user}" for user in users}
    ghana_paths = {(e["method"], e["path"]) for e in ghana.state.request_log()}
    assert ("POST", "/disbursement/v1_0/refund") in ghana_paths
    assert ("POST", "/disbursement/token/") in ghana_paths
    assert sandbox.state.request_count("POST", "/disbursement") == 0

    # Callbacks come from the market that holds the transaction.
    by_path = {c.path: c.json() for c in callbacks}
    assert by_path["/cb/eur"]["currency"] == "EUR"
    assert by_path["/cb/ghs"]["currency"] == "GHS"
    assert by_path["/cb/ghs-refund"]["payee"]["partyId"] == "233241234567"
    assert {c["url"] for c in sandbox.state.callback_log()} == {f"{hook}/cb/eur"}


def test_a_reference_is_only_known_to_the_market_that_took_it(markets):
    sandbox, ghana = markets
    platform, tenant_ghana = accounts(sandbox, ghana)
    eur, ghs = client(platform), client(tenant_ghana)
    eur_payment = collect(eur, "EUR")

    with pytest.raises(MtnNotFoundError):
        ghs.request_to_pay_status(reference_id=eur_payment)
    # A refund is accepted by any market (MTN answers 202 to a well-formed one) and fails
    # where the collection is unknown; the market that holds it sees nothing.
    refund_ref = uuid.uuid4()
    ghs.refund(
        reference_id=refund_ref,
        amount="1",
        currency="GHS",
        external_id="wrong-account",
        reference_id_to_refund=eur_payment,
    )
    refund = ghs.refund_status(reference_id=refund_ref)

    assert (refund.status, refund.reason_code) == ("FAILED", "TRANSACTION_NOT_FOUND")
    assert [t["reference_id"] for t in ghana.state.all_transactions()] == [str(refund_ref)]
    assert sandbox.state.refunds_of(eur_payment) == []


def test_account_check_of_both_markets_and_of_crossed_credentials(markets):
    sandbox, ghana = markets
    platform, tenant_ghana = accounts(sandbox, ghana)
    crossed = MtnConfig.for_account(
        account="crossed",
        base_url=ghana.base_url,
        target_environment="mtnghana",
        collection=platform.collection,
        disbursement=GH_DISBURSEMENT,
    )
    wrong_environment = MtnConfig.for_account(
        account="wrong-env",
        base_url=ghana.base_url,
        target_environment="sandbox",
        collection=GH_COLLECTION,
    )

    good = [check_account(platform), check_account(tenant_ghana)]
    bad = check_account(crossed)
    env = check_account(wrong_environment)

    assert [c.as_dict()["collection"]["currency"] for c in good] == ["EUR", "GHS"]
    assert all(c.ok for c in good)
    assert not bad.ok
    assert "collection subscription key" in bad.checks[0].problem
    assert bad.checks[1].ok
    assert "target environment 'sandbox'" in env.checks[0].problem
