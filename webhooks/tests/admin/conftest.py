from __future__ import annotations

from typing import Any

import pytest

from payments.models import Payment
from payments.tests.admin.factories import (
    fast_password_hashing,  # noqa: F401 - autouse
    make_transfer_with_history,
)


@pytest.fixture
def paid(tenant: Any) -> Payment:
    """Alice's payment: SUCCESSFUL, with a trail, an MTN callback and a failed delivery."""
    return make_transfer_with_history(tenant)
