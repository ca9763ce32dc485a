"""The simulator's public names, importable from here as before it was split by product."""

from .config import MARKET_CURRENCIES, ProductCredentials, SandboxConfig
from .faults import Faults
from .http import SandboxHandle, start_sandbox
from .state import SandboxState, SimTransaction

__all__ = [
    "MARKET_CURRENCIES",
    "Faults",
    "ProductCredentials",
    "SandboxConfig",
    "SandboxHandle",
    "SandboxState",
    "SimTransaction",
    "start_sandbox",
]
