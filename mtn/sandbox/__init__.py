"""Local MTN MoMo simulator: ``start_sandbox(SandboxConfig(...))`` or ``manage.py mtn_sandbox``.

One module per MTN product or concern: ``collection``, ``disbursement`` (transfers and
refunds), ``accountholder``, ``provisioning``, ``auth`` (keys, tokens, target environment),
``transactions`` (what every transaction shares), ``callbacks``, ``faults`` and ``control``
(the ``/_simulator/`` API), ``state``, ``config``, ``app`` (routing) and ``http`` (server).
"""

from .config import MARKET_CURRENCIES, ProductCredentials, SandboxConfig
from .faults import Faults
from .http import SandboxHandle, start_sandbox
from .state import SandboxState

__all__ = [
    "MARKET_CURRENCIES",
    "Faults",
    "ProductCredentials",
    "SandboxConfig",
    "SandboxHandle",
    "SandboxState",
    "start_sandbox",
]
