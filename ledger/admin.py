"""The ledger in the support console: accounts, transactions and entries, read-only.

Nobody edits the ledger here; money moves only through ``ledger.services`` (an adjustment
is made from the tenant's page, by staff with the ``ledger.adjust_balance`` permission).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from gateway.admin import IdentifierSearchMixin, ReadOnlyAdminMixin
from ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction

if TYPE_CHECKING:  # generic only in django-stubs; at run time the classes take no parameters
    ModelAdmin = admin.ModelAdmin[Any]
    EntryInline = admin.TabularInline[LedgerEntry, LedgerTransaction]
else:
    ModelAdmin = admin.ModelAdmin
    EntryInline = admin.TabularInline


def _tenant_link(tenant_id: Any, stripe: int = 0) -> SafeString | str:
    if tenant_id is None:
        # The platform's accounts are striped (ledger.models.PLATFORM_STRIPES): a platform
        # balance is the sum of its stripes' rows (filter by kind and currency to see them).
        return f"platform (stripe {stripe})"
    url = reverse("admin:tenants_tenant_change", args=[tenant_id])
    return format_html("<a href='{}'>{}</a>", url, tenant_id)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdminMixin, IdentifierSearchMixin, ModelAdmin):
    list_display = ("id", "owner", "currency", "kind", "balance", "version", "updated_at")
    list_filter = ("kind", "currency")
    uuid_search_fields = ("tenant_id",)
    search_help_text = "A tenant's id."
    fields = (
        "id",
        "owner",
        "currency",
        "kind",
        "balance",
        "version",
        "entries_link",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="owner")
    def owner(self, obj: LedgerAccount) -> SafeString | str:
        return _tenant_link(obj.tenant_id, obj.stripe)

    @admin.display(description="entries")
    def entries_link(self, obj: LedgerAccount) -> SafeString:
        url = reverse("admin:ledger_ledgerentry_changelist") + f"?account__id__exact={obj.pk}"
        return format_html("<a href='{}'>The account's entries</a>", url)


class LedgerEntryInline(EntryInline):
    model = LedgerEntry
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdminMixin, IdentifierSearchMixin, ModelAdmin):
    list_display = (
        "created_at",
        "type",
        "tenant",
        "currency",
        "amount",
        "fee",
        "net",
        "source_object",
        "source_id",
    )
    list_filter = ("type", "currency", "source_object")
    date_hierarchy = "created_at"
    show_full_result_count = False
    uuid_search_fields = ("id", "tenant_id", "source_id")
    search_help_text = "A transaction's id, a tenant's id, or a payment's, payout's or refund's id."
    fields = (
        "id",
        "created_at",
        "type",
        "tenant",
        "currency",
        "amount",
        "fee",
        "net",
        "source_object",
        "source_id",
        "memo",
    )
    readonly_fields = fields
    inlines = (LedgerEntryInline,)

    @admin.display(description="tenant", ordering="tenant_id")
    def tenant(self, obj: LedgerTransaction) -> SafeString | str:
        return _tenant_link(obj.tenant_id)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "created_at", "transaction", "account", "amount")
    list_filter = ("account__kind", "account__currency")
    list_select_related = ("transaction", "account")
    show_full_result_count = False
    fields = ("id", "created_at", "transaction", "account", "amount")
    readonly_fields = fields
