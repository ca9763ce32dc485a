"""Staff groups that separate looking from acting on money.

- **Support**: may view everything in the console (payments, payouts, refunds, callbacks,
  deliveries, the audit trail, tenants, keys, balances) and change nothing.
- **Money operators**: Support's view, plus re-check a transfer with MTN, check an MTN
  account with MTN, redeliver a merchant webhook, resolve a transfer flagged for review
  (accept MTN's status, which posts a ledger correction, or keep ours), and adjust a
  tenant's balance: every action that makes the gateway call MTN or move money.

Kept in step by ``staff_groups_sync``, run after every ``migrate`` (as Django creates model
permissions) and by ``manage.py setup_staff_groups``. It only adds: a permission someone
granted a group by hand stays. A staff user is given a group in the admin (Users page).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import DEFAULT_DB_ALIAS

SUPPORT = "Support"
MONEY_OPERATORS = "Money operators"

# (app label, model name, codename, name): permissions of actions, not of a model's rows.
RECHECK_PERMISSION = "payments.recheck_transfer"
REDELIVER_PERMISSION = "webhooks.redeliver_merchantdelivery"
CHECK_MTN_ACCOUNT_PERMISSION = "mtn.check_mtnaccount"
RESOLVE_PERMISSION = "payments.resolve_review"
ADJUST_BALANCE_PERMISSION = "ledger.adjust_balance"  # defined by the ledger app, when present
CUSTOM_PERMISSIONS = (
    ("payments", "payment", "recheck_transfer", "Can re-check payments and payouts with MTN"),
    ("webhooks", "merchantdelivery", "redeliver_merchantdelivery", "Can redeliver webhooks"),
    ("mtn", "mtnaccount", "check_mtnaccount", "Can check MTN accounts with MTN"),
    ("payments", "payment", "resolve_review", "Can resolve transfers flagged for review"),
)
# Apps whose rows support staff look at.
VIEWED_APPS = ("gateway", "payments", "webhooks", "tenants", "mtn", "ledger")
OPERATOR_ACTIONS = (
    RECHECK_PERMISSION,
    REDELIVER_PERMISSION,
    RESOLVE_PERMISSION,
    ADJUST_BALANCE_PERMISSION,
    CHECK_MTN_ACCOUNT_PERMISSION,
)


def staff_groups_sync(*, apps: Any = global_apps, using: str = DEFAULT_DB_ALIAS) -> None:
    """Create the custom permissions and both groups, and grant what is missing. Idempotent.

    Works with a migration's historical ``apps`` too; a model or app that does not exist
    (yet) is skipped, so this runs the same before and after the ledger arrives.
    """
    try:
        permission_model = apps.get_model("auth", "Permission")
        group_model = apps.get_model("auth", "Group")
        content_type_model = apps.get_model("contenttypes", "ContentType")
    except LookupError:
        return
    for app_label in VIEWED_APPS:
        try:
            app_config = global_apps.get_app_config(app_label)
        except LookupError:
            continue
        # Django makes model permissions after each app's migrate; this may run before that
        # app's turn, so make sure they exist before granting them.
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    for app_label, model, codename, name in CUSTOM_PERMISSIONS:
        try:
            apps.get_model(app_label, model)
        except LookupError:
            continue
        content_type, _ = content_type_model.objects.db_manager(using).get_or_create(
            app_label=app_label, model=model
        )
        permission_model.objects.db_manager(using).get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )

    views = permission_model.objects.db_manager(using).filter(
        content_type__app_label__in=VIEWED_APPS, codename__startswith="view_"
    )
    actions = permission_model.objects.db_manager(using).none()
    for dotted in OPERATOR_ACTIONS:
        app_label, codename = dotted.split(".", 1)
        actions |= permission_model.objects.db_manager(using).filter(
            content_type__app_label=app_label, codename=codename
        )
    support, _ = group_model.objects.db_manager(using).get_or_create(name=SUPPORT)
    support.permissions.add(*views)
    operators, _ = group_model.objects.db_manager(using).get_or_create(name=MONEY_OPERATORS)
    operators.permissions.add(*views, *actions)


def sync_after_migrate(
    sender: Any, *, apps: Any = global_apps, using: str = DEFAULT_DB_ALIAS, **kwargs: Any
) -> None:
    """post_migrate receiver (sent after every migrate and every test-database flush)."""
    staff_groups_sync(apps=apps, using=using)
