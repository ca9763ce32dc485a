"""Support console for payments, payouts and refunds: read-only, with history and a re-check.

Money records are never edited by hand. A payment's page shows, beside its fields, its
audit trail, the MTN callbacks received for it and the merchant webhooks sent about it; a
payment's page also lists its refunds, and a refund's links back to its payment.
"Re-check status with MTN" asks MTN's status endpoint through ``transfer_recheck``, which
applies a final answer through the state machine and records who asked. A transfer flagged
for review (MTN's record differs) is resolved on its own page, ``<id>/resolve/``, by "Money
operators" only: accept MTN's status (a ledger correction) or keep ours, with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from gateway.admin import (
    MAX_ROWS_PER_NETWORK_ACTION,
    IdentifierSearchMixin,
    ObjectActionsMixin,
    ReadOnlyAdminMixin,
    clipped,
    failure_reason,
    json_block,
    model_admin_link,
    pretty_json,
    review_flag,
    short_id,
    staff_actor,
)
from gateway.models import AuditEvent
from gateway.money import format_amount
from gateway.shares import share_slot
from gateway.staff_groups import RECHECK_PERMISSION, RESOLVE_PERMISSION
from mtn.errors import MtnError
from mtn.models import DEFAULT_ACCOUNT, MtnAccount
from payments.models import MoneyTransfer, Payment, Payout, PayoutBatch, Refund
from payments.representation import items_csv_lines
from payments.services import (
    ACCEPT_MTN,
    KEEP,
    Applied,
    ResolutionRefused,
    transfer_recheck,
    transfer_resolve,
)
from payments.states import Status, Submission
from webhooks.models import MerchantDelivery, MtnCallback


class ResolveForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (ACCEPT_MTN, "Accept MTN's status (posts a ledger correction, tells the merchant)"),
            (KEEP, "Keep our record (clears the flag)"),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


@dataclass(frozen=True)
class TrailRow:
    event: AuditEvent
    data: str


@dataclass(frozen=True)
class CallbackRow:
    callback: MtnCallback
    url: str


@dataclass(frozen=True)
class RefundRow:
    refund: Refund
    url: str
    amount: str


@dataclass(frozen=True)
class DeliveryRow:
    delivery: MerchantDelivery
    url: str
    attempts: list[Any]


def transfer_history(transfer: MoneyTransfer) -> dict[str, list[Any]]:
    """The audit trail, MTN callbacks and merchant deliveries of one transfer (four queries),
    and a payment's refunds (one more)."""
    kind = transfer.kind
    events = AuditEvent.objects.filter(object_type=kind, object_id=str(transfer.pk)).order_by(
        "created_at", "id"
    )
    callbacks = MtnCallback.objects.filter(object_type=kind, object_id=transfer.pk).order_by(
        "received_at", "id"
    )
    deliveries = (
        MerchantDelivery.objects.filter(object_type=kind, object_id=transfer.pk)
        .prefetch_related("attempts")
        .order_by("created_at", "id")
    )
    history: dict[str, list[Any]] = {
        "audit_trail": [
            TrailRow(event, pretty_json(event.data) if event.data else "") for event in events
        ],
        "mtn_callbacks": [
            CallbackRow(
                callback, reverse("admin:webhooks_mtncallback_change", args=[quote(callback.pk)])
            )
            for callback in callbacks
        ],
        "merchant_deliveries": [
            DeliveryRow(
                delivery,
                reverse("admin:webhooks_merchantdelivery_change", args=[quote(delivery.pk)]),
                list(delivery.attempts.all()),
            )
            for delivery in deliveries
        ],
    }
    if isinstance(transfer, Payment):
        history["refunds"] = [
            RefundRow(
                refund,
                reverse("admin:payments_refund_change", args=[quote(refund.pk)]),
                format_amount(refund.amount, refund.currency),
            )
            for refund in Refund.objects.filter(payment_id=transfer.pk).order_by("created_at", "id")
        ]
    return history


def transfer_step(transfer: MoneyTransfer) -> tuple[str, str]:
    """Where the transfer got to with MTN: a short label for lists and a sentence for its page.

    Read together with the status, so that a failed row never reads as merely "submitted".
    """
    waiting, waiting_long = (
        ("with payer", "awaiting the payer's approval")
        if transfer.kind == "payment"
        else ("with MTN", "MTN is processing it")
    )
    if transfer.submission == Submission.REJECTED:
        return "refused", "Refused: MTN turned the request down when it was sent."
    if transfer.submission == Submission.QUEUED:
        if transfer.status == Status.PENDING:
            return "queued", "Queued: not yet accepted by MTN (the worker retries)."
        return "never sent", f"Never accepted by MTN; {transfer.status.lower()} without it."
    if transfer.status == Status.SUCCESSFUL:
        return "completed", "Accepted by MTN, which then reported it SUCCESSFUL."
    if transfer.status == Status.FAILED:
        return "failed at MTN", "Accepted by MTN, which then reported it FAILED (see the reason)."
    return waiting, f"Accepted by MTN; {waiting_long}."


class SubmissionFilter(admin.SimpleListFilter):
    """Where the request to MTN stands, in the list's short words."""

    title = "at MTN"
    parameter_name = "submission"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (Submission.QUEUED, "not sent yet"),
            (Submission.SUBMITTED, "accepted by MTN"),
            (Submission.REJECTED, "refused by MTN"),
        ]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() in Submission.values:
            return queryset.filter(submission=self.value())
        return queryset


class MtnAccountFilter(admin.SimpleListFilter):
    """The MTN account that carries it. Offered from the accounts' own small table, not by a
    DISTINCT over every payment; its parameter is Django's own (``mtn_account__exact``)."""

    title = "MTN account"
    parameter_name = "mtn_account__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = MtnAccount.objects.order_by("name").values_list("name", flat=True)
        return [(DEFAULT_ACCOUNT, DEFAULT_ACCOUNT), *((name, name) for name in names)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value():
            return queryset.filter(mtn_account=self.value())
        return queryset


class TransferAdmin(
    ObjectActionsMixin, ReadOnlyAdminMixin, IdentifierSearchMixin, admin.ModelAdmin
):
    """What payments, payouts and refunds share; the subclasses name the party field."""

    change_form_template = "admin/payments/transfer_change_form.html"
    list_select_related = ("tenant",)
    list_filter = (
        "status",
        "tenant",
        "currency",
        MtnAccountFilter,
        "needs_review",
        SubmissionFilter,
    )
    date_hierarchy = "created_at"
    show_full_result_count = False
    uuid_search_fields = ("id", "mtn_reference_id")
    exact_search_fields = ("mtn_financial_transaction_id",)
    actions = ("recheck_with_mtn",)
    object_actions = ("recheck_with_mtn",)
    # The fields a kind has beside those every transfer has.
    own_fields: tuple[str, ...] = ("reference", "description", "metadata_display")
    # A list row, readable at a glance at 1366 px; the party column comes from the subclass.
    list_display_before_party = ("short_id_display", "tenant", "status_display", "amount_display")
    list_display_after_party = (
        "reference_display",
        "failure_display",
        "account_display",
        "step_display",
        "created_at",
    )

    def get_list_display(self, request: HttpRequest) -> Any:
        if self.list_display != admin.ModelAdmin.list_display:
            return self.list_display  # a subclass that names its own columns keeps them
        after = self.list_display_after_party
        if not MtnAccount.objects.exists():
            # Only the MTN_* settings' `default` carries anything: an account column would say
            # "default" on every row and push the list past a 1366 px screen.
            after = tuple(column for column in after if column != "account_display")
        return (*self.list_display_before_party, self.model.party_field, *after)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        party = self.model.party_field
        return [
            (
                None,
                {
                    "fields": (
                        "id_label",
                        "tenant",
                        "status",
                        "review_display",
                        "amount_display",
                        party,
                        *self.own_fields,
                        "failure_code",
                        "failure_message",
                    )
                },
            ),
            (
                "MTN",
                {
                    "fields": (
                        "account_page_display",
                        "mtn_reference_id_display",
                        "mtn_financial_transaction_id_display",
                        "submission_display",
                        "submit_attempts",
                        "poll_attempts",
                        "next_attempt_at",
                        "last_error",
                        "callback_token_display",
                    )
                },
            ),
            ("Times", {"fields": ("created_at", "submitted_at", "finalized_at", "updated_at")}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields: list[str] = []
        for _name, options in self.get_fieldsets(request, obj):
            for entry in options["fields"]:
                fields.extend(entry if isinstance(entry, tuple) else (entry,))
        return fields

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: MoneyTransfer) -> str:
        return f"{format_amount(obj.amount, obj.currency)} {obj.currency}"

    # --- list columns --------------------------------------------------------------------

    @admin.display(description="id", ordering="id")
    def short_id_display(self, obj: MoneyTransfer) -> SafeString | str:
        return short_id(obj.pk)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: MoneyTransfer) -> SafeString:
        return format_html(
            '<span class="gateway-status gateway-status-{}">{}</span>{}',
            obj.status.lower(),
            obj.status,
            review_flag(obj.needs_review),
        )

    @admin.display(description="reference", ordering="reference")
    def reference_display(self, obj: MoneyTransfer) -> SafeString | str:
        return clipped(obj.reference)

    @admin.display(description="failure reason", ordering="failure_code")
    def failure_display(self, obj: MoneyTransfer) -> SafeString | str:
        return failure_reason(obj.failure_code, obj.failure_message)

    @admin.display(description="MTN account", ordering="mtn_account")
    def account_display(self, obj: MoneyTransfer) -> str:
        return obj.mtn_account

    @admin.display(description="at MTN", ordering="submission")
    def step_display(self, obj: MoneyTransfer) -> SafeString:
        short, long = transfer_step(obj)
        return format_html('<span title="{}">{}</span>', long, short)

    # --- the page's labels ---------------------------------------------------------------

    @admin.display(description="needs review")
    def review_display(self, obj: MoneyTransfer) -> SafeString | str:
        if not obj.needs_review:
            return f"No (earlier: {obj.review_reason})" if obj.review_reason else "No"
        opts = self.model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_resolve", args=[quote(obj.pk)])
        return format_html(
            'Yes: {}. MTN\'s answer: <pre>{}</pre><a href="{}">Resolve…</a> (Money operators)',
            obj.review_reason or "MTN's record differs from ours",
            pretty_json(obj.mtn_claim),
            url,
        )

    # --- resolving a review --------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name=f"{opts.app_label}_{opts.model_name}_resolve",
            ),
            *super().get_urls(),
        ]

    def resolve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Accept MTN's status or keep ours, with a reason: Money operators only."""
        if not request.user.has_perm(RESOLVE_PERMISSION):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.model._meta.verbose_name} with id {object_id!r}.")
        opts = self.model._meta
        change_url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)]
        )
        form = ResolveForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = transfer_resolve(
                    transfer=obj,
                    decision=form.cleaned_data["decision"],
                    reason=form.cleaned_data["reason"],
                    actor=staff_actor(request),
                )
            except ResolutionRefused as exc:
                self.message_user(request, f"Nothing changed: {exc}", messages.ERROR)
            else:
                if result.changed:
                    self.message_user(
                        request,
                        f"Resolved: {result.previous_status} -> {result.transfer.status}.",
                        messages.SUCCESS,
                    )
                else:
                    self.message_user(request, "It was not flagged; nothing changed.")
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "title": f"Resolve the review of {obj.kind} {obj.pk}",
            "object": obj,
            "claim": pretty_json(obj.mtn_claim),
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/payments/resolve_review.html", context)

    @admin.display(description="MTN account")
    def account_page_display(self, obj: MoneyTransfer) -> SafeString | str:
        """The account's name, linked to its page; ``default`` is the ``MTN_*`` settings'."""
        if obj.mtn_account == DEFAULT_ACCOUNT:
            return f"{DEFAULT_ACCOUNT} (the platform's account of the MTN_* settings)"
        account = MtnAccount.objects.filter(name=obj.mtn_account).only("pk", "name").first()
        return model_admin_link(account) if account is not None else obj.mtn_account

    @admin.display(description="MTN reference ID")
    def mtn_reference_id_display(self, obj: MoneyTransfer) -> str:
        return str(obj.mtn_reference_id)

    @admin.display(description="MTN financial transaction ID")
    def mtn_financial_transaction_id_display(self, obj: MoneyTransfer) -> str:
        return obj.mtn_financial_transaction_id or "-"

    @admin.display(description="submission to MTN")
    def submission_display(self, obj: MoneyTransfer) -> str:
        return transfer_step(obj)[1]

    @admin.display(description="metadata")
    def metadata_display(self, obj: MoneyTransfer) -> SafeString:
        return json_block(obj.metadata)

    @admin.display(description="callback token")
    def callback_token_display(self, obj: MoneyTransfer) -> str:
        # The token is the credential of the per-payment callback URL: never shown whole.
        return f"{obj.callback_token[:4]}… (hidden)" if obj.callback_token else "-"

    # --- history on the change page ------------------------------------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(transfer_history(obj))
            context["kind"] = self.model.kind
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- re-check with MTN ---------------------------------------------------------------

    def has_recheck_permission(self, request: HttpRequest) -> bool:
        # Asking MTN changes nothing MTN has not already decided, and is audited; still, it
        # acts on money, so it is for "Money operators", not for staff who only look.
        return request.user.has_perm(RECHECK_PERMISSION)

    @admin.action(description="Re-check status with MTN", permissions=["recheck"])
    def recheck_with_mtn(self, request: HttpRequest, queryset: Any) -> None:
        transfers = list(queryset.select_related("tenant")[: MAX_ROWS_PER_NETWORK_ACTION + 1])
        if len(transfers) > MAX_ROWS_PER_NETWORK_ACTION:
            self.message_user(
                request,
                f"Select at most {MAX_ROWS_PER_NETWORK_ACTION} rows to re-check at once "
                "(each one is a call to MTN). Nothing was re-checked.",
                messages.ERROR,
            )
            return
        with share_slot("ADMIN_RECHECK_SLOTS") as free:
            if not free:
                # Each re-check waits on MTN: a bounded share of this process may (Capacity).
                self.message_user(
                    request,
                    "This server is already re-checking with MTN as much as it allows. "
                    "Nothing was re-checked; try again in a moment.",
                    messages.WARNING,
                )
                return
            for transfer in transfers:
                self._recheck_one(request, transfer)

    def _recheck_one(self, request: HttpRequest, transfer: MoneyTransfer) -> None:
        label = f"{transfer.kind.capitalize()} {transfer.pk}"
        try:
            result = transfer_recheck(transfer=transfer, actor=staff_actor(request))
        except MtnError as exc:
            status = f", HTTP {exc.status_code}" if exc.status_code else ""
            self.message_user(
                request,
                f"{label}: MTN could not be asked ({exc.code}{status}: {exc.message}). "
                "Nothing changed.",
                messages.ERROR,
            )
            return
        status = result.transfer.status
        level, text = {
            Applied.APPLIED: (messages.SUCCESS, f"MTN reports {status}; it is now {status}."),
            Applied.UNCHANGED: (messages.INFO, f"MTN confirms {status}; nothing changed."),
            Applied.CONTRADICTED: (
                messages.WARNING,
                f"MTN reports another final status, but it is {status}: flagged for review, "
                "nothing changed. Resolve it with its page's 'Resolve…'.",
            ),
            Applied.MISMATCH: (
                messages.WARNING,
                "MTN's amount, currency, party or externalId differ from ours; flagged for "
                f"review, still {status}.",
            ),
            Applied.NOT_FINAL: (messages.INFO, f"MTN has no final status yet; still {status}."),
        }.get(result.outcome, (messages.INFO, f"re-checked ({result.outcome}); {status}."))
        self.message_user(request, f"{label}: {text}", level)


@admin.register(Payment)
class PaymentAdmin(TransferAdmin):
    own_fields = ("reference", "description", "metadata_display", "fee_percent_display")
    partial_search_fields = ("reference",)
    phone_search_fields = ("payer",)
    search_help_text = (
        "A payment id or MTN reference ID (whole, or its first characters), an MTN financial "
        "transaction ID, a payer number (+256… or part of it), or part of a merchant reference."
    )

    @admin.display(description="collection fee (captured at creation)")
    def fee_percent_display(self, obj: Payment) -> str:
        if obj.collection_fee_percent is None:
            return "not captured: the tenant's percent when it settles"
        return f"{obj.collection_fee_percent} %"


@admin.register(Payout)
class PayoutAdmin(TransferAdmin):
    own_fields = ("batch_link", "reference", "description", "metadata_display")
    partial_search_fields = ("reference",)
    phone_search_fields = ("payee",)
    search_help_text = (
        "A payout id or MTN reference ID (whole, or its first characters), an MTN financial "
        "transaction ID, a payee number (+256… or part of it), or part of a merchant reference."
    )

    @admin.display(description="payout batch")
    def batch_link(self, obj: Payout) -> SafeString | str:
        if obj.batch_id is None:
            return "-"
        url = reverse("admin:payments_payoutbatch_change", args=[quote(obj.batch_id)])
        return format_html('<a href="{}">{}</a> (item {})', url, obj.batch_id, obj.batch_index)


@admin.register(Refund)
class RefundAdmin(TransferAdmin):
    own_fields = ("payment_link", "reason")
    list_select_related = ("tenant", "payment")
    list_display_after_party = (
        "payment_short_link",
        "failure_display",
        "account_display",
        "step_display",
        "created_at",
    )
    uuid_search_fields = ("id", "mtn_reference_id", "payment_id")
    partial_search_fields = ("reason",)
    phone_search_fields = ("payer",)
    search_help_text = (
        "A refund id, its payment's id or an MTN reference ID (whole, or its first "
        "characters), an MTN financial transaction ID, a payer number (+256… or part of it), "
        "or part of a reason."
    )

    @admin.display(description="payment")
    def payment_link(self, obj: Refund) -> SafeString:
        url = reverse("admin:payments_payment_change", args=[quote(obj.payment_id)])
        return format_html('<a href="{}">{}</a>', url, obj.payment_id)

    @admin.display(description="payment")
    def payment_short_link(self, obj: Refund) -> SafeString:
        # The list shows the first segment, like its own id column; the whole id on hover.
        url = reverse("admin:payments_payment_change", args=[quote(obj.payment_id)])
        return format_html('<a href="{}">{}</a>', url, short_id(obj.payment_id))


# --- payout batches ------------------------------------------------------------------------

BATCH_ITEMS_PER_PAGE = 50


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ReadOnlyAdminMixin, IdentifierSearchMixin, admin.ModelAdmin):
    """A batch's progress at a glance, its payouts page by page, and its results as CSV."""

    change_form_template = "admin/payments/payoutbatch_change_form.html"
    list_display = (
        "short_id_display",
        "tenant",
        "status_display",
        "reference_display",
        "progress_display",
        "total_display",
        "succeeded_display",
        "created_at",
    )
    list_select_related = ("tenant",)
    list_filter = ("status", "tenant", "currency")
    date_hierarchy = "created_at"
    show_full_result_count = False
    uuid_search_fields = ("id",)
    partial_search_fields = ("reference",)
    search_help_text = "A batch id (whole, or its first characters) or part of its reference."
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "id_label",
                    "tenant",
                    "status",
                    "reference",
                    "description",
                    "progress_display",
                    "total_display",
                    "succeeded_display",
                    "mtn_account",
                )
            },
        ),
        ("Times", {"fields": ("created_at", "completed_at", "updated_at")}),
    ]
    readonly_fields = (
        "id_label",
        "tenant",
        "status",
        "reference",
        "description",
        "progress_display",
        "total_display",
        "succeeded_display",
        "mtn_account",
        "created_at",
        "completed_at",
        "updated_at",
    )

    @admin.display(description="id", ordering="id")
    def short_id_display(self, obj: PayoutBatch) -> SafeString | str:
        return short_id(obj.pk)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: PayoutBatch) -> SafeString:
        return format_html(
            '<span class="gateway-status gateway-status-{}">{}</span>',
            obj.status.lower(),
            obj.status,
        )

    @admin.display(description="reference", ordering="reference")
    def reference_display(self, obj: PayoutBatch) -> SafeString | str:
        return clipped(obj.reference)

    @admin.display(description="progress")
    def progress_display(self, obj: PayoutBatch) -> SafeString:
        """Done of total, and how many of those failed (in red when any did)."""
        failed = (
            format_html(', <span class="gateway-batch-failed">{} failed</span>', obj.failed_count)
            if obj.failed_count
            else ", 0 failed"
        )
        return format_html(
            '<span class="gateway-progress" title="{} successful, {} failed, {} pending">'
            "{}/{} done{}</span>",
            obj.successful_count,
            obj.failed_count,
            obj.pending_count,
            obj.done_count,
            obj.count,
            failed,
        )

    @admin.display(description="total", ordering="total_amount")
    def total_display(self, obj: PayoutBatch) -> str:
        return f"{format_amount(obj.total_amount, obj.currency)} {obj.currency}"

    @admin.display(description="paid", ordering="amount_succeeded")
    def succeeded_display(self, obj: PayoutBatch) -> str:
        return f"{format_amount(obj.amount_succeeded, obj.currency)} {obj.currency}"

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/results.csv",
                self.admin_site.admin_view(self.results_csv_view),
                name="payments_payoutbatch_results",
            ),
            *super().get_urls(),
        ]

    def results_csv_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """Every payout of the batch with its outcome: the API's ``format=csv`` report."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        batch = self.get_object(request, unquote(object_id))
        if batch is None:
            raise Http404("No such payout batch.")
        rows = Payout.objects.filter(batch=batch).order_by("batch_index").iterator(chunk_size=1000)
        response = StreamingHttpResponse(items_csv_lines(rows), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="payout-batch-{batch.pk}.csv"'
        return response

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(batch_items_page(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)


@dataclass(frozen=True)
class BatchItemRow:
    payout: Payout
    url: str
    amount: str


def batch_items_page(request: HttpRequest, batch: PayoutBatch) -> dict[str, Any]:
    """The page of the batch's payouts that ``?items_status=`` and ``?items_page=`` ask for."""
    status = request.GET.get("items_status")
    items = Payout.objects.filter(batch=batch).order_by("batch_index")
    if status in Status.values:
        items = items.filter(status=status)
    else:
        status = None
    paginator = Paginator(items, BATCH_ITEMS_PER_PAGE)
    page = paginator.get_page(request.GET.get("items_page"))
    base = {"items_status": status} if status else {}

    def link(**params: Any) -> str:
        return "?" + urlencode({**base, **params}) if {**base, **params} else "?"

    return {
        "batch_items": [
            BatchItemRow(
                payout,
                reverse("admin:payments_payout_change", args=[quote(payout.pk)]),
                format_amount(payout.amount, payout.currency),
            )
            for payout in page.object_list
        ],
        "batch_items_page": page,
        "batch_items_status": status,
        "batch_status_links": [
            ("All", "?" if status is None else "?", status is None),
            *(
                (value, "?" + urlencode({"items_status": value}), status == value)
                for value in Status.values
            ),
        ],
        "batch_previous_url": link(items_page=page.previous_page_number())
        if page.has_previous()
        else None,
        "batch_next_url": link(items_page=page.next_page_number()) if page.has_next() else None,
        "batch_results_url": reverse("admin:payments_payoutbatch_results", args=[quote(batch.pk)]),
        # The batch's own history: created, completed, and the payout_batch.completed webhook.
        "audit_trail": [
            TrailRow(event, pretty_json(event.data) if event.data else "")
            for event in AuditEvent.objects.filter(
                object_type="payout_batch", object_id=str(batch.pk)
            ).order_by("created_at", "id")
        ],
        "merchant_deliveries": [
            DeliveryRow(
                delivery,
                reverse("admin:webhooks_merchantdelivery_change", args=[quote(delivery.pk)]),
                [],
            )
            for delivery in MerchantDelivery.objects.filter(
                object_type="payout_batch", object_id=batch.pk
            ).order_by("created_at", "id")
        ],
    }
