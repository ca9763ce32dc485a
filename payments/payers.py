"""Payer look-up: is a number an active MoMo account, and whose is it (contract, Payer look-up).

Asked through the MTN account that would carry a payment in that currency for this tenant
(``mtn.accounts``). Only the number, whether it is active and the holder's name leave this
module: MTN's other personal data (birth date, gender, locale...) is never kept. Every
look-up is audited with the number masked.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from gateway.audit import Actor, audit_record
from gateway.errors import GatewayError, ValidationFailed
from gateway.logging import mask_msisdn
from gateway.money import MoneyError, parse_currency
from gateway.shares import share_slot
from mtn.accounts import mtn_route
from mtn.calls import PermitTimeout, call_within_limits
from mtn.errors import (
    MtnAuthenticationError,
    MtnConfigurationError,
    MtnError,
    MtnNotFoundError,
    MtnRejectedError,
)
from payments.routing import check_currency_carried

logger = logging.getLogger(__name__)

# A look-up waits this long at most for a permit from its MTN account's limits, then is 503.
PERMIT_WAIT_SECONDS = 2.0

# The payments' MSISDN rule: 9 to 15 digits with the country code, an optional leading "+".
_MSISDN_RE = re.compile(r"\+?([0-9]{9,15})", re.ASCII)


class MtnUnavailable(GatewayError):
    code = "mtn_unavailable"
    http_status = 502
    default_message = "MTN could not answer the look-up now; try again shortly."


# MTN refused the gateway itself (credentials, settings): retrying cannot help until an
# operator fixes the account, so the message does not invite a retry.
REFUSED_MESSAGE = (
    "MTN refused the gateway's own credentials or settings for this currency's market, so the "
    "number could not be looked up; retrying will not help until the gateway's operator fixes "
    "the MTN account."
)


class MtnBusy(GatewayError):
    code = "mtn_busy"
    http_status = 503
    default_message = (
        "This server is already waiting on MTN for as many look-ups as it allows; "
        "retry in a moment."
    )


@dataclass(frozen=True)
class PayerInfo:
    msisdn: str
    active: bool
    name: str | None


def parse_payer_query(*, msisdn: str, params: Any) -> tuple[str, str]:
    """``(msisdn, currency)`` from the path and query; 400 ``validation_error`` otherwise.

    Unknown query parameters are refused before, by the view (``gateway.query``).
    """
    errors: dict[str, list[str]] = {}
    match = _MSISDN_RE.fullmatch(msisdn)
    if match is None:
        errors["msisdn"] = ["Must be an MSISDN: 9 to 15 digits with the country code."]
    currencies = params.getlist("currency") if hasattr(params, "getlist") else []
    currency = ""
    if not currencies:
        errors["currency"] = ["Required: the currency a payment would be in, e.g. UGX."]
    elif len(currencies) > 1:
        errors["currency"] = ["Give one currency."]
    else:
        try:
            currency = parse_currency(currencies[0])
        except MoneyError as exc:
            errors["currency"] = [str(exc)]
    if errors:
        raise ValidationFailed("The look-up is not valid.", fields=errors)
    assert match is not None  # noqa: S101 - errors is empty only when the number matched
    return match.group(1), currency


def payer_lookup(*, tenant: Any, msisdn: str, currency: str, actor: Actor) -> PayerInfo:
    """Ask MTN whether ``msisdn`` is an active account and its holder's name.

    Through the account routed for (tenant, currency). A number MTN does not know is
    ``active=False, name=None``. Raises ``MtnUnavailable`` (502) when MTN cannot answer or
    refuses the gateway itself; writes one audit event either way, never the whole number.
    Holds one of the process's ``PAYER_LOOKUP_SLOTS`` while MTN answers; with none free,
    raises ``MtnBusy`` (503 with ``Retry-After``) and asks nobody.
    """
    check_currency_carried(tenant_id=tenant.pk, currency=currency)
    with share_slot("PAYER_LOOKUP_SLOTS") as free:
        if not free:
            raise MtnBusy(headers={"Retry-After": "1"})
        return _payer_lookup(tenant=tenant, msisdn=msisdn, currency=currency, actor=actor)


def _payer_lookup(*, tenant: Any, msisdn: str, currency: str, actor: Actor) -> PayerInfo:
    routed = mtn_route(tenant_id=tenant.pk, currency=currency)
    account = routed.account
    product = "collection" if account.has_product("collection") else "disbursement"
    masked = mask_msisdn(msisdn)
    outcome = "answered"
    client = routed.client
    try:
        active = call_within_limits(
            account,
            lambda: client.account_holder_active(product=product, msisdn=msisdn),
            wait_up_to=PERMIT_WAIT_SECONDS,
        )
        name = None
        if active:
            try:
                name = call_within_limits(
                    account,
                    lambda: client.basic_user_info(product=product, msisdn=msisdn).name,
                    wait_up_to=PERMIT_WAIT_SECONDS,
                )
            except MtnNotFoundError:
                name = None
    except PermitTimeout as exc:
        # The account's limits (shared by every process) are taken by other calls now.
        outcome = "busy"
        raise MtnBusy(headers={"Retry-After": "1"}) from exc
    except (MtnAuthenticationError, MtnConfigurationError) as exc:
        # The gateway's own set-up, not the merchant's request: say so to operators only.
        outcome = f"refused:{exc.code}"
        logger.error("MTN refused a payer look-up through account %s: %s", routed.name, exc.code)
        raise MtnUnavailable(REFUSED_MESSAGE) from exc
    except MtnRejectedError:
        # MTN refuses the number itself (e.g. not a MoMo number in this market).
        active, name = False, None
    except MtnError as exc:
        outcome = f"failed:{exc.code}"
        logger.warning("MTN could not answer a payer look-up (%s)", exc.code)
        raise MtnUnavailable() from exc
    finally:
        audit_record(
            tenant=tenant,
            object_type="payer",
            object_id=masked,
            action="payer.looked_up",
            actor=actor,
            data={
                "msisdn": masked,
                "currency": currency,
                "account": routed.name,
                "outcome": outcome,
            },
        )
    return PayerInfo(msisdn=msisdn, active=active, name=name if active else None)
