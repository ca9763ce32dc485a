"""Payer look-up: account holder ``active`` and ``basicuserinfo``, keeping only the name."""

from __future__ import annotations

import pytest
import responses

from mtn.client import AccountHolderInfo
from mtn.errors import MtnConfigurationError, MtnNotFoundError, MtnRetryableError
from mtn.sandbox.scenarios import holder_name

from .conftest import UNIT_BASE_URL

MTN_BASIC_USER_INFO = {
    "sub": "0",
    "name": "Sand Box",
    "given_name": "Sand",
    "family_name": "Box",
    "birthdate": "1976-08-13",
    "locale": "sv_SE",
    "gender": "MALE",
    "updated_at": 1676878958,
}


def add_token(product: str) -> None:
    responses.add(
        responses.POST,
        f"{UNIT_BASE_URL}/{product}/token/",
        json={"access_token": f"{product}-tok", "token_type": "access_token", "expires_in": 3600},
    )


@responses.activate
def test_basic_user_info_keeps_only_the_name_fields(unit_client):
    add_token("collection")
    url = f"{UNIT_BASE_URL}/collection/v1_0/accountholder/msisdn/256772123456/basicuserinfo"
    responses.add(responses.GET, url, json=MTN_BASIC_USER_INFO)

    info = unit_client.basic_user_info(product="collection", msisdn="256772123456")

    assert info == AccountHolderInfo(name="Sand Box", given_name="Sand", family_name="Box")
    assert "1976" not in repr(info)
    assert not hasattr(info, "birthdate")
    request = responses.calls[-1].request
    assert request.headers["Ocp-Apim-Subscription-Key"] == "col-sub-key"
    assert request.headers["X-Target-Environment"] == "sandbox"


@responses.activate
def test_basic_user_info_uses_the_products_credentials(unit_client):
    add_token("disbursement")
    url = f"{UNIT_BASE_URL}/disbursement/v1_0/accountholder/msisdn/256772123456/basicuserinfo"
    responses.add(responses.GET, url, json={"given_name": " Grace ", "family_name": "Nakato"})

    info = unit_client.basic_user_info(product="disbursement", msisdn="256772123456")

    assert info == AccountHolderInfo(name="Grace Nakato", given_name="Grace", family_name="Nakato")
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer disbursement-tok"


@responses.activate
def test_basic_user_info_without_names_is_none(unit_client):
    add_token("collection")
    url = f"{UNIT_BASE_URL}/collection/v1_0/accountholder/msisdn/256772123456/basicuserinfo"
    responses.add(responses.GET, url, json={"sub": "1", "name": 42, "birthdate": "2000-01-01"})

    info = unit_client.basic_user_info(msisdn="256772123456")

    assert info == AccountHolderInfo(name=None, given_name=None, family_name=None)


@responses.activate
def test_number_is_quoted_into_the_path(unit_client):
    add_token("collection")
    responses.add(
        responses.GET,
        f"{UNIT_BASE_URL}/collection/v1_0/accountholder/msisdn/..%2Fx/active",
        json={"result": True},
    )

    assert unit_client.account_holder_active(msisdn="../x") is True


def test_unknown_product_is_refused_before_any_call(unit_client):
    with pytest.raises(ValueError):
        unit_client.basic_user_info(product="remittance", msisdn="256772123456")


# --- against the simulator -------------------------------------------------------------------


@pytest.mark.e2e
def test_simulator_gives_each_number_its_own_fixed_name(mtn_client):
    first = mtn_client.basic_user_info(msisdn="256772123456")
    again = mtn_client.basic_user_info(product="disbursement", msisdn="256772123456")
    other = mtn_client.basic_user_info(msisdn="256700000001")

    given, family = holder_name("256772123456")
    assert first == again == AccountHolderInfo(f"{given} {family}", given, family)
    assert (
        other.name
        and other.name != first.name
        or holder_name("256700000001")
        == (
            given,
            family,
        )
    )


@pytest.mark.e2e
def test_simulator_unknown_and_inactive_numbers_are_not_active(mtn_client):
    assert mtn_client.account_holder_active(msisdn="256772123456") is True
    assert mtn_client.account_holder_active(msisdn="46733123450") is False
    assert mtn_client.account_holder_active(msisdn="46733123451") is False
    with pytest.raises(MtnNotFoundError):
        mtn_client.basic_user_info(msisdn="46733123450")
    with pytest.raises(MtnNotFoundError):
        mtn_client.basic_user_info(msisdn="46733123451")


@pytest.mark.e2e
def test_simulator_holder_errors_are_raised_not_taken_for_inactive(mtn_client):
    with pytest.raises(MtnConfigurationError) as not_allowed:
        mtn_client.account_holder_active(msisdn="46733123452", retry=False)
    with pytest.raises(MtnRetryableError) as unavailable:
        mtn_client.basic_user_info(msisdn="46733123455", retry=False)

    assert not_allowed.value.code == "NOT_ALLOWED"
    assert unavailable.value.code == "SERVICE_UNAVAILABLE"
