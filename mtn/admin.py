"""MTN accounts in the support console: listed, edited through ``mtn_account_set``, checked.

Credentials are write-only: the form has empty password inputs (left empty, a credential
keeps what is stored) and the pages say only whether each product's credentials are set,
never a value, not even masked or as ciphertext. ``default`` is not a row: the ``MTN_*``
settings describe it. Accounts are never deleted, because payments name the account they
went through.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from gateway.admin import MAX_ROWS_PER_NETWORK_ACTION, ObjectActionsMixin, staff_actor
from gateway.crypto import EncryptionKeyError, SecretDecryptionError
from mtn.accounts import (
    MtnAccountError,
    mtn_account_check,
    mtn_account_set,
    mtn_account_validate,
)
from mtn.models import CREDENTIAL_FIELDS, PRODUCTS, MtnAccount


def _credential_field(product: str, part: str) -> forms.CharField:
    return forms.CharField(
        label=f"{product.title()} {part.replace('_', ' ')}",
        required=False,
        strip=True,
        # render_value=False: what is stored is never sent to the browser.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep what is stored.",
    )


def _https_by_default(field: Any, **kwargs: Any) -> Any:
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class MtnAccountForm(forms.ModelForm):
    # Declared, so that the form never loads (decrypts) what is stored into its initial data.
    collection_subscription_key = _credential_field("collection", "subscription_key")
    collection_api_user = _credential_field("collection", "api_user")
    collection_api_key = _credential_field("collection", "api_key")
    disbursement_subscription_key = _credential_field("disbursement", "subscription_key")
    disbursement_api_user = _credential_field("disbursement", "api_user")
    disbursement_api_key = _credential_field("disbursement", "api_key")
    currencies = forms.CharField(
        help_text="ISO 4217 codes separated by commas or spaces, e.g. UGX. The owner's payments "
        "in these currencies go through this account."
    )

    class Meta:
        model = MtnAccount
        fields = (
            "name",
            "tenant",
            "target_environment",
            "base_url",
            "callback_url",
            "max_in_flight",
            "rate_limit",
        )
        formfield_callback = _https_by_default
        help_texts = {
            "tenant": "Empty: the platform's account. A tenant's own account carries only that "
            "tenant's money, straight to its wallet (no balance here). It never changes.",
            "base_url": "Empty: MTN's host for the target environment.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_url"].required = False
        # Say what an empty limit means here and now.
        self.fields["max_in_flight"].help_text = (
            "Calls at once to MTN through this account, over all processes. Empty: "
            f"MTN_MAX_IN_FLIGHT ({settings.MTN_MAX_IN_FLIGHT})."
        )
        self.fields["rate_limit"].help_text = (
            "Calls per second to MTN through this account, over all processes. Empty: "
            f"MTN_RATE_LIMIT ({settings.MTN_RATE_LIMIT:g})."
        )
        if self.instance.pk:
            self.fields["name"].disabled = True
            self.fields["tenant"].disabled = True
            self.initial["currencies"] = ", ".join(self.instance.currency_list())

    def _post_clean(self) -> None:
        # The model is written by mtn_account_set, never by the form: skip ModelForm's
        # instance update and model validation (unique name etc. are checked in clean()).
        return

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        credentials: dict[str, dict[str, str]] = {}
        for product in PRODUCTS:
            parts = {part: data.get(f"{product}_{part}") or "" for part in CREDENTIAL_FIELDS}
            if any(parts.values()):
                # All three or none: parse_credentials names the ones missing.
                credentials[product] = {part: value for part, value in parts.items() if value}
        tenant = data.get("tenant")
        try:
            self.account_values = {
                "name": self.instance.name if self.instance.pk else data.get("name") or "",
                "target_environment": data.get("target_environment") or "",
                "currencies": data.get("currencies", "").replace(",", " ").upper().split(),
                "credentials": credentials,
                "base_url": data.get("base_url") or None,
                "callback_url": data.get("callback_url") or "",
                "tenant_slug": tenant.slug if tenant is not None else None,
                "max_in_flight": data.get("max_in_flight"),
                "rate_limit": data.get("rate_limit"),
            }
            mtn_account_validate(**self.account_values)
        except MtnAccountError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(MtnAccount)
class MtnAccountAdmin(ObjectActionsMixin, admin.ModelAdmin):
    form = MtnAccountForm
    change_form_template = "admin/gateway/change_form.html"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = (
        "name",
        "owner",
        "target_environment",
        "currencies_display",
        "base_url",
        "callback_url",
        "credentials_display",
        "updated_at",
    )
    list_filter = ("target_environment", ("tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "tenant__slug")
    list_select_related = ("tenant",)
    actions = ("check_with_mtn",)
    object_actions = ("check_with_mtn",)
    readonly_fields = ("credentials_display", "created_at", "updated_at")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets: list[Any] = [
            (
                None,
                {
                    "fields": (
                        "name",
                        "tenant",
                        "target_environment",
                        "currencies",
                        "base_url",
                        "callback_url",
                    )
                },
            ),
        ]
        fieldsets.append(("MTN call limits", {"fields": ("max_in_flight", "rate_limit")}))
        for product in PRODUCTS:
            fieldsets.append(
                (
                    f"{product.title()} credentials",
                    {"fields": tuple(f"{product}_{part}" for part in CREDENTIAL_FIELDS)},
                )
            )
        if obj is not None:
            fieldsets.append(("State", {"fields": self.readonly_fields}))
        return fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        # Only the plain model fields come from the model; the credentials are the form's own
        # write-only fields (a model field here would put the stored secret in the form).
        kwargs["fields"] = MtnAccountForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("currency_claims")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="owner", ordering="tenant__slug")
    def owner(self, obj: MtnAccount) -> str:
        return obj.tenant.slug if obj.tenant_id else "platform"

    @admin.display(description="currencies")
    def currencies_display(self, obj: MtnAccount) -> str:
        return ", ".join(sorted(claim.currency for claim in obj.currency_claims.all()))

    @admin.display(description="credentials")
    def credentials_display(self, obj: MtnAccount) -> str:
        # Whether each product's three credentials are stored, judged without decrypting.
        states = []
        for product in PRODUCTS:
            stored = all(obj.__dict__.get(f"{product}_{part}") for part in CREDENTIAL_FIELDS)
            states.append(f"{product}: {'set' if stored else 'not set'}")
        return "; ".join(states)

    # --- writes go through the service ---------------------------------------------------

    def save_model(self, request: HttpRequest, obj: MtnAccount, form: Any, change: bool) -> None:
        try:
            account = mtn_account_set(actor=staff_actor(request), **form.account_values)
        except (MtnAccountError, EncryptionKeyError) as exc:
            # Only a race gets here: the form has already checked everything.
            obj._gateway_save_error = str(exc)  # type: ignore[attr-defined]
            return
        for field in MtnAccount._meta.concrete_fields:
            # From the dict: the secrets stay sealed, nothing is decrypted for the page.
            obj.__dict__[field.attname] = account.__dict__.get(field.attname)
        obj._state.adding = False
        obj._state.db = account._state.db

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return  # the currencies were written by mtn_account_set

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(obj, "_gateway_save_error", None):
            return None
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(obj, "_gateway_save_error", None):
            return None
        return super().log_change(request, obj, message)

    def response_add(
        self, request: HttpRequest, obj: MtnAccount, post_url_continue: str | None = None
    ) -> HttpResponse:
        return self._error_response(request, obj) or super().response_add(
            request, obj, post_url_continue
        )

    def response_change(self, request: HttpRequest, obj: MtnAccount) -> HttpResponse:
        return self._error_response(request, obj) or super().response_change(request, obj)

    def _error_response(self, request: HttpRequest, obj: MtnAccount) -> HttpResponse | None:
        error = getattr(obj, "_gateway_save_error", None)
        if not error:
            return None
        self.message_user(request, f"Nothing was stored: {error}", messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    # --- Check with MTN ------------------------------------------------------------------

    @admin.action(description="Check with MTN", permissions=["view"])
    def check_with_mtn(self, request: HttpRequest, queryset: Any) -> None:
        accounts = list(queryset[: MAX_ROWS_PER_NETWORK_ACTION + 1])
        if len(accounts) > MAX_ROWS_PER_NETWORK_ACTION:
            self.message_user(
                request,
                f"Select at most {MAX_ROWS_PER_NETWORK_ACTION} accounts; each is a call to MTN. "
                "Nothing was checked.",
                messages.ERROR,
            )
            return
        for account in accounts:
            try:
                result = mtn_account_check(account)
            except (EncryptionKeyError, SecretDecryptionError) as exc:
                self.message_user(request, f"{account.name}: {exc}", messages.ERROR)
                continue
            words = [
                f"{check.product}: OK, balance {check.balance} {check.currency}"
                if check.ok
                else f"{check.product}: {check.problem}"
                for check in result.checks
            ]
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(
                request, f"{account.name} — " + ("; ".join(words) or "no credentials"), level
            )
