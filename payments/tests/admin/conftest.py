from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from payments.models import Payment
from payments.tests.admin.factories import (
    fast_password_hashing,  # noqa: F401 - autouse
    make_transfer_with_history,
)


@pytest.fixture
def paid(tenant: Any) -> Payment:
    """Alice's payment: SUCCESSFUL, with a trail, an MTN callback and a failed delivery."""
    return make_transfer_with_history(tenant)


@pytest.fixture
def viewer_client(django_user_model: Any) -> Client:
    """A staff user who may only view payments, payouts and the audit trail."""
    user = django_user_model.objects.create_user(
        username="viewer", password="not-a-real-password", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_payment", "view_payout", "view_auditevent"])
    )
    client = Client()
    client.force_login(user)
    return client
