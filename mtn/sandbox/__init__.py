"""Local MTN MoMo simulator: ``start_sandbox(SandboxConfig(...))`` or ``manage.py mtn_sandbox``."""

from .server import Faults, SandboxConfig, SandboxHandle, SandboxState, start_sandbox

__all__ = ["Faults", "SandboxConfig", "SandboxHandle", "SandboxState", "start_sandbox"]
