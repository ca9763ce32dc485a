"""Support console for tenants and their API keys.

A tenant added here is created by ``tenant_create`` (webhook secret, first API key, audit
event). Raw API keys and webhook secrets are shown once, in a message, and never stored:
the database keeps only a key's prefix and hash. Tenants and keys are never deleted, so
their history stays whole; a key is revoked instead.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from gateway.admin import (
    ObjectActionsMixin,
    ReadOnlyAdminMixin,
    admin_time,
    clipped,
    staff_actor,
)
from gateway.money import SUPPORTED_CURRENCIES, format_amount
from ledger.models import LedgerTransaction
from ledger.selectors import balance_list, balance_lists, balance_transaction_list
from ledger.services import MAX_REASON_LENGTH
from tenants.balances import (
    AdjustmentPreview,
    AdjustmentRefused,
    tenant_balance_adjust,
    tenant_balance_adjust_preview,
)
from tenants.models import ApiKey, Tenant
from tenants.services import (
    TenantError,
    api_key_create,
    api_key_revoke,
    tenant_create,
    tenant_rotate_webhook_secret,
    tenant_update,
)

# Messages travel in a signed cookie through one redirect. A few secrets fit; many would
# spill over into the session table, which would store them: so few tenants per action.
MAX_TENANTS_PER_SECRET_ACTION = 5

EDITABLE_FIELDS = ("name", "is_active", "webhook_url", "rate_limit", "collection_fee_percent")

_SHOWN_ONCE = "Copy it now: it is shown only this once and cannot be recovered."

# The dedicated permission for moving a tenant's money by hand (defined on the ledger).
ADJUST_BALANCE_PERMISSION = "ledger.adjust_balance"
RECENT_TRANSACTIONS = 10


class AdjustBalanceForm(forms.Form):
    currency = forms.ChoiceField(choices=[(code, code) for code in SUPPORTED_CURRENCIES])
    amount = forms.CharField(
        max_length=32,
        help_text="A plain decimal number: positive credits the available balance, a leading "
        "minus debits it, e.g. 50000 or -1250 (UGX), 12.50 (EUR). No more decimals than the "
        "currency has.",
    )
    reason = forms.CharField(
        max_length=MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why: kept with the transaction and in the audit trail.",
    )


def _preview_rows(preview: AdjustmentPreview) -> dict[str, str]:
    """The confirmation page's figures, formatted in the adjustment's currency."""
    currency = preview.currency
    return {
        "kind": "Credit" if preview.amount > 0 else "Debit",
        "amount": f"{format_amount(abs(preview.amount), currency)} {currency}",
        "before": f"{format_amount(preview.before.available, currency)} {currency}",
        "after": f"{format_amount(preview.available_after, currency)} {currency}",
        "reserved": f"{format_amount(preview.before.reserved, currency)} {currency}",
        "reason": preview.reason,
    }


@admin.register(Tenant)
class TenantAdmin(ObjectActionsMixin, admin.ModelAdmin):
    change_form_template = "admin/tenants/tenant_change_form.html"
    list_display = (
        "slug",
        "name",
        "is_active",
        "available_display",
        "webhook_url_display",
        "rate_limit_display",
        "created_at",
    )
    list_filter = ("is_active",)
    search_fields = ("slug", "name")
    actions = ("issue_api_key", "rotate_webhook_secret")
    object_actions = ("issue_api_key", "rotate_webhook_secret")
    add_fields = ("slug", "name", "webhook_url", "rate_limit", "collection_fee_percent")
    # A webhook URL typed without a scheme is meant as https (Django 6's default too).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    change_fields = (
        "slug",
        "name",
        "is_active",
        "webhook_url",
        "rate_limit",
        "collection_fee_percent",
        "id",
        "webhook_secret_status",
        "api_keys_display",
        "balances_display",
        "created_at",
        "updated_at",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.add_fields if obj is None else self.change_fields

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # The page's balances in one query, not one per row.
        page = list(changelist.result_list)
        balances = balance_lists(tenant_ids=[tenant.pk for tenant in page])
        for tenant in page:
            tenant.listed_balances = balances.get(tenant.pk, [])
        return changelist

    @admin.display(description="available")
    def available_display(self, obj: Tenant) -> str:
        balances = getattr(obj, "listed_balances", None)
        if balances is None:
            balances = balance_list(tenant_id=obj.pk)
        return (
            " · ".join(f"{format_amount(b.available, b.currency)} {b.currency}" for b in balances)
            or "-"
        )

    @admin.display(description="rate limit", ordering="rate_limit")
    def rate_limit_display(self, obj: Tenant) -> str:
        return obj.rate_limit or f"{settings.RATE_LIMIT_DEFAULT} (default)"

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if "webhook_url" in form.base_fields:
            form.base_fields["webhook_url"].label = "Webhook URL"
        if "rate_limit" in form.base_fields:
            # The rate in force, not the name of the setting that holds it.
            form.base_fields["rate_limit"].help_text = (
                "Requests per API key, e.g. 600/m. Empty: the gateway's default, "
                f"{settings.RATE_LIMIT_DEFAULT} (RATE_LIMIT_DEFAULT)."
            )
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return tuple(name for name in self.change_fields if name not in EDITABLE_FIELDS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="webhook URL", ordering="webhook_url")
    def webhook_url_display(self, obj: Tenant) -> SafeString | str:
        if not obj.webhook_url:
            return "- (none: webhooks not sent)"
        return clipped(obj.webhook_url, width="wide")

    @admin.display(description="webhook secret")
    def webhook_secret_status(self, obj: Tenant) -> str:
        if not obj.webhook_secret:
            return "Not set."
        text = "Set (shown only when created or rotated)."
        expires = obj.previous_webhook_secret_expires_at
        if obj.previous_webhook_secret and expires and expires > timezone.now():
            text += f" The previous secret also signs until {admin_time(expires)}."
        return text

    @admin.display(description="API keys")
    def api_keys_display(self, obj: Tenant) -> SafeString | str:
        keys = list(obj.api_keys.order_by("-created_at"))
        if not keys:
            return "None."
        rows = format_html_join(
            "",
            "<tr><td><a href='{}'>{}…</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:tenants_apikey_change", args=[quote(key.pk)]),
                    key.prefix,
                    key.name or "-",
                    admin_time(key.created_at),
                    admin_time(key.last_used_at),
                    f"revoked {admin_time(key.revoked_at)}" if key.revoked_at else "active",
                )
                for key in keys
            ),
        )
        return format_html(
            "<table><thead><tr><th>Prefix</th><th>Name</th><th>Created</th><th>Last used</th>"
            "<th>State</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="balances")
    def balances_display(self, obj: Tenant) -> SafeString | str:
        balances = balance_list(tenant_id=obj.pk)
        statement = reverse("admin:ledger_ledgertransaction_changelist") + f"?tenant_id={obj.pk}"
        if not balances:
            return format_html("None yet. <a href='{}'>Ledger transactions</a>", statement)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    b.currency,
                    format_amount(b.available, b.currency),
                    format_amount(b.reserved, b.currency),
                )
                for b in balances
            ),
        )
        recent = format_html_join(
            "",
            "<tr><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td></tr>",
            (
                (
                    reverse("admin:ledger_ledgertransaction_change", args=[quote(t.pk)]),
                    admin_time(t.created_at),
                    t.type,
                    t.currency,
                    format_amount(t.amount, t.currency),
                    format_amount(t.fee, t.currency),
                    format_amount(t.net, t.currency),
                )
                for t in _recent_transactions(obj)
            ),
        )
        return format_html(
            "<table><thead><tr><th>Currency</th><th>Available</th><th>Reserved</th></tr>"
            "</thead><tbody>{}</tbody></table>"
            "<p>Latest transactions (<a href='{}'>all of them, with their entries</a>):</p>"
            "<table><thead><tr><th>At</th><th>Type</th><th>Currency</th><th>Amount</th>"
            "<th>Fee</th><th>Net</th></tr></thead><tbody>{}</tbody></table>",
            rows,
            statement,
            recent,
        )

    # --- adjusting a balance -------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/adjust-balance/",
                self.admin_site.admin_view(self.adjust_balance_view),
                name="tenants_tenant_adjust_balance",
            ),
            *super().get_urls(),
        ]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None and request.user.has_perm(ADJUST_BALANCE_PERMISSION):
            context["adjust_balance_url"] = reverse(
                "admin:tenants_tenant_adjust_balance", args=[quote(obj.pk)]
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def adjust_balance_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Credit or debit the tenant's available balance, with a reason (audited).

        Only for staff with ``ledger.adjust_balance``; anyone else gets 403, nothing posted.
        """
        if not request.user.has_perm(ADJUST_BALANCE_PERMISSION):
            raise PermissionDenied
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            raise Http404(f"No tenant with id {object_id!r}.")
        form = AdjustBalanceForm(request.POST if request.method == "POST" else None)
        preview = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if "confirm" in request.POST:
                    balance = tenant_balance_adjust(
                        tenant=tenant,
                        currency=data["currency"],
                        amount=data["amount"].strip(),
                        reason=data["reason"],
                        actor=staff_actor(request),
                    )
                elif "edit" not in request.POST:
                    # First the confirmation page: nothing moves until a person confirms.
                    preview = tenant_balance_adjust_preview(
                        tenant=tenant,
                        currency=data["currency"],
                        amount=data["amount"].strip(),
                        reason=data["reason"],
                    )
            except AdjustmentRefused as exc:
                form.add_error(None, str(exc))
            else:
                if "confirm" in request.POST:
                    self.message_user(
                        request,
                        f"Adjusted {tenant.slug}'s {balance.currency} balance: available is "
                        f"now {format_amount(balance.available, balance.currency)}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:tenants_tenant_change", args=[quote(tenant.pk)])
                    )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust the balance of {tenant.slug}",
            "opts": self.model._meta,
            "original": tenant,
            "form": form,
            "preview": preview and _preview_rows(preview),
            "balances": [
                (b.currency, format_amount(b.available, b.currency))
                for b in balance_list(tenant_id=tenant.pk)
            ],
        }
        return TemplateResponse(request, "admin/tenants/adjust_balance.html", context)

    # --- add and change ------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if change:
            self._update(request, obj, form)
        else:
            self._create(request, obj)

    def _create(self, request: HttpRequest, obj: Tenant) -> None:
        try:
            tenant, issued = tenant_create(
                slug=obj.slug,
                name=obj.name,
                webhook_url=obj.webhook_url,
                rate_limit=obj.rate_limit,
                collection_fee_percent=obj.collection_fee_percent,
                actor=staff_actor(request),
            )
        except TenantError as exc:
            # Only a race gets here: the form has already checked the fields and the slug.
            obj._gateway_create_error = str(exc)  # type: ignore[attr-defined]
            return
        for field in Tenant._meta.concrete_fields:
            setattr(obj, field.attname, getattr(tenant, field.attname))
        obj._state.adding = False
        obj._state.db = tenant._state.db
        self.message_user(
            request,
            f"API key for {tenant.slug}: {issued.raw_key} — {_SHOWN_ONCE}",
            messages.WARNING,
        )
        self.message_user(
            request,
            f"Webhook secret for {tenant.slug}: {tenant.webhook_secret} — give it to the "
            "merchant to verify webhook signatures. It is shown only this once.",
            messages.WARNING,
        )

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "collection_fee_percent" and field is not None:
            # A form posted without it (an older page, a script) keeps the current fee: the
            # model form leaves an omitted field with a default as it is.
            field.required = False
        return field

    def _update(self, request: HttpRequest, obj: Tenant, form: Any) -> None:
        # `obj` holds the form's values; a field counts as changed only if its value did.
        changed = [
            name
            for name in form.changed_data
            if name in EDITABLE_FIELDS and getattr(obj, name) != form.initial.get(name)
        ]
        if not changed:
            return
        tenant_update(
            tenant=obj,
            changes={name: getattr(obj, name) for name in changed},
            previous={name: form.initial.get(name) for name in changed},
            actor=staff_actor(request),
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(obj, "_gateway_create_error", None):
            return None
        return super().log_addition(request, obj, message)

    def response_add(
        self, request: HttpRequest, obj: Tenant, post_url_continue: str | None = None
    ) -> HttpResponse:
        error = getattr(obj, "_gateway_create_error", None)
        if error:
            self.message_user(request, f"The tenant was not created: {error}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)

    # --- keys and secrets ----------------------------------------------------------------

    def _too_many(self, request: HttpRequest, queryset: Any) -> list[Tenant] | None:
        tenants = list(queryset[: MAX_TENANTS_PER_SECRET_ACTION + 1])
        if len(tenants) > MAX_TENANTS_PER_SECRET_ACTION:
            self.message_user(
                request,
                f"Select at most {MAX_TENANTS_PER_SECRET_ACTION} tenants: each new secret is "
                "shown once in a message. Nothing was done.",
                messages.ERROR,
            )
            return None
        return tenants

    @admin.action(description="Issue a new API key", permissions=["change"])
    def issue_api_key(self, request: HttpRequest, queryset: Any) -> None:
        tenants = self._too_many(request, queryset)
        for tenant in tenants or ():
            issued = api_key_create(
                tenant=tenant,
                actor=staff_actor(request),
                name=f"issued in the admin by {request.user.get_username()}"[:100],
            )
            self.message_user(
                request,
                f"New API key for {tenant.slug}: {issued.raw_key} — {_SHOWN_ONCE}",
                messages.WARNING,
            )

    @admin.action(description="Rotate webhook secret", permissions=["change"])
    def rotate_webhook_secret(self, request: HttpRequest, queryset: Any) -> None:
        tenants = self._too_many(request, queryset)
        for tenant in tenants or ():
            rotated = tenant_rotate_webhook_secret(tenant=tenant, actor=staff_actor(request))
            expires = rotated.previous_webhook_secret_expires_at
            self.message_user(
                request,
                f"New webhook secret for {rotated.slug}: {rotated.webhook_secret} — shown only "
                f"this once. The previous secret keeps signing until {admin_time(expires)}.",
                messages.WARNING,
            )


def _recent_transactions(tenant: Tenant) -> list[LedgerTransaction]:
    return balance_transaction_list(tenant_id=tenant.pk, limit=RECENT_TRANSACTIONS).results


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(ObjectActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Keys are issued from the tenant's page and never edited; they can be revoked."""

    change_form_template = "admin/gateway/change_form.html"
    list_display = ("prefix", "tenant", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = (ApiKeyStateFilter, "tenant")
    list_select_related = ("tenant",)
    search_fields = ("^prefix", "=tenant__slug", "name")
    search_help_text = "The start of a key (its first 12 characters), a tenant slug, or a name."
    actions = ("revoke",)
    object_actions = ("revoke",)
    fields = ("id", "prefix", "tenant", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("tenant")

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")

    @admin.action(description="Revoke", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        revoked = already = 0
        for api_key in queryset:
            if api_key.revoked_at is not None:
                already += 1
                continue
            api_key_revoke(api_key=api_key, actor=staff_actor(request))
            revoked += 1
        if revoked:
            self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)
        if already:
            self.message_user(request, f"{already} key(s) were already revoked; left as they were.")
