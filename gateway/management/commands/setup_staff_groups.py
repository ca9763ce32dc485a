"""Create (or complete) the "Support" and "Money operators" staff groups."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from gateway.staff_groups import MONEY_OPERATORS, SUPPORT, staff_groups_sync


class Command(BaseCommand):
    help = (
        'Create the staff groups "Support" (view only) and "Money operators" (view, re-check '
        "with MTN, redeliver webhooks, adjust balances) with their permissions. Idempotent; "
        "migrate does it too."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        staff_groups_sync()
        for name in (SUPPORT, MONEY_OPERATORS):
            group = Group.objects.get(name=name)
            self.stdout.write(f"{name}: {group.permissions.count()} permissions")
