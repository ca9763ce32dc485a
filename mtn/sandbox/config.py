"""How one simulator instance behaves: its market, its credentials, its timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .faults import Faults

PRODUCTS = ("collection", "disbursement")

# Production target environments and the only currency each accepts (reference section 1.3).
MARKET_CURRENCIES = {
    "sandbox": "EUR",
    "mtnuganda": "UGX",
    "mtnghana": "GHS",
    "mtnzambia": "ZMW",
    "mtncameroon": "XAF",
    "mtnivorycoast": "XOF",
    "mtnbenin": "XOF",
    "mtncongo": "XAF",
    "mtnrwanda": "RWF",
    "mtnswaziland": "SZL",
    "mtnsouthafrica": "ZAR",
    "mtnliberia": "LRD",
    "mtnguineaconakry": "GNF",
}


def _setting(name: str, default: Any) -> Any:
    """A Django setting when Django is configured, else the simulator's built-in default."""
    try:
        from django.conf import settings

        if settings.configured:
            return getattr(settings, name, default)
    except Exception:  # noqa: BLE001,S110 - Django missing or misconfigured: use the default
        pass
    return default


# The seeded API users' providerCallbackHost when MTN_CALLBACK_URL is not set: the host of
# Django's live test server, and a name (MTN refuses IP addresses as callback hosts).
FALLBACK_CALLBACK_HOST = "localhost"


def callback_host_from_settings() -> str:
    """The host of ``MTN_CALLBACK_URL``: what the gateway's X-Callback-Url will carry."""
    url = str(_setting("MTN_CALLBACK_URL", "") or "")
    return (urlsplit(url).hostname or "").lower() or FALLBACK_CALLBACK_HOST


@dataclass(frozen=True)
class ProductCredentials:
    subscription_key: str = field(repr=False)
    api_user: str
    api_key: str = field(repr=False)


def credentials_from_settings(product: str) -> ProductCredentials:
    """The ``MTN_*`` credentials of ``product``, so gateway and simulator agree by default."""
    upper = product.upper()
    defaults = {
        "collection": (
            "simulator-collection-subscription-key",
            "1f2a3b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
            "simulator-collection-api-key",
        ),
        "disbursement": (
            "simulator-disbursement-subscription-key",
            "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d",
            "simulator-disbursement-api-key",
        ),
    }[product]
    return ProductCredentials(
        subscription_key=_setting(f"MTN_{upper}_SUBSCRIPTION_KEY", defaults[0]),
        api_user=_setting(f"MTN_{upper}_API_USER", defaults[1]),
        api_key=_setting(f"MTN_{upper}_API_KEY", defaults[2]),
    )


@dataclass
class SandboxConfig:
    """How the simulator behaves. Defaults mirror the MTN sandbox and the gateway's settings.

    One instance is one MTN market: ``target_environment`` is the only
    ``X-Target-Environment`` it accepts and ``currency`` the only currency (by default the
    market's own, from :data:`MARKET_CURRENCIES`; ``None`` for an unknown environment means
    any). ``collection``/``disbursement`` are the credentials it accepts, so that several
    simulators with different credentials can run side by side.
    """

    target_environment: str = field(
        default_factory=lambda: _setting("MTN_TARGET_ENVIRONMENT", "sandbox")
    )
    collection: ProductCredentials = field(
        default_factory=lambda: credentials_from_settings("collection")
    )
    disbursement: ProductCredentials = field(
        default_factory=lambda: credentials_from_settings("disbursement")
    )
    currency: str | None = None
    # providerCallbackHost of the seeded API users: an X-Callback-Url with another host is
    # 500 INVALID_CALLBACK_URL_HOST and creates nothing, as at MTN. Default: MTN_CALLBACK_URL's.
    provider_callback_host: str = field(default_factory=callback_host_from_settings)
    # MTN's provisioning API (/v1_0/apiuser) exists only in its sandbox; a production
    # market answers 404 there. None = on exactly when target_environment is "sandbox".
    provisioning: bool | None = None
    delay_seconds: float = 25.0  # …454: PENDING, then SUCCESSFUL after this long
    # Every MTN API call (not /_simulator/) waits this long before it is handled, as a slow
    # or degraded MTN does; only the calling thread waits. Changeable at runtime
    # (POST /_simulator/latency); the value a reset returns to.
    latency_seconds: float = 0.0
    callback_method: str = "POST"  # MTN's callback page; PUT is its v2 behaviour
    reason_as_object: bool = False  # the spec's {code, message} instead of the live string
    signed_callback_url: str | None = None  # also send every final callback here
    webhook_secret: str = field(
        default_factory=lambda: _setting("MTN_WEBHOOK_SECRET", "dev-mtn-webhook-secret")
    )
    token_expires_in: int = 3600
    callback_timeout: float = 2.0  # MTN waits ~2 s for the callback answer (section 8.1)
    balance: str = "1000000"
    seed: int | None = None
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self.provider_callback_host = (
            self.provider_callback_host or callback_host_from_settings()
        ).lower()
        if self.currency is None:
            self.currency = MARKET_CURRENCIES.get(self.target_environment)
        else:
            self.currency = self.currency.strip().upper()

    @property
    def provisioning_enabled(self) -> bool:
        if self.provisioning is None:
            return self.target_environment == "sandbox"
        return self.provisioning

    def credentials(self, product: str) -> ProductCredentials:
        return self.collection if product == "collection" else self.disbursement
