"""Support console for merchant webhook deliveries (with redelivery) and MTN callbacks.

Both are records of what was sent or received, so they are read-only. "Redeliver webhook"
makes one more attempt now through ``delivery_redeliver``, with the same ``webhook-id``,
recorded as an attempt and in the audit trail.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.utils.safestring import SafeString

from gateway.admin import (
    MAX_ROWS_PER_NETWORK_ACTION,
    IdentifierSearchMixin,
    ObjectActionsMixin,
    ReadOnlyAdminMixin,
    admin_time,
    choice_label,
    choice_words_filter,
    clipped,
    json_block,
    object_admin_link,
    short_id_link,
    staff_actor,
    text_block,
)
from gateway.staff_groups import REDELIVER_PERMISSION
from webhooks.delivery import NoWebhookUrl, delivery_redeliver
from webhooks.models import DeliveryAttempt, MerchantDelivery, MtnCallback

# Short words for list columns; the model's full label shows on hover and on the page.
DELIVERY_STATE_WORDS = {
    MerchantDelivery.State.PENDING: "pending",
    MerchantDelivery.State.SUCCEEDED: "delivered",
    MerchantDelivery.State.FAILED: "failed",
    MerchantDelivery.State.NO_ENDPOINT: "not sent (no URL)",
}
CALLBACK_OUTCOME_WORDS = {
    MtnCallback.Outcome.RECEIVED: "received",
    MtnCallback.Outcome.APPLIED: "applied",
    MtnCallback.Outcome.DUPLICATE: "duplicate",
    MtnCallback.Outcome.FINAL_ALREADY: "already final",
    MtnCallback.Outcome.CONTRADICTED: "contradicts: review",
    MtnCallback.Outcome.UNCONFIRMED: "unconfirmed",
    MtnCallback.Outcome.MISMATCH: "mismatch: review",
    MtnCallback.Outcome.UNMATCHED: "no known payment",
    MtnCallback.Outcome.DEFERRED: "to confirm",
    MtnCallback.Outcome.NOT_FINAL: "not final",
}
CALLBACK_DOOR_WORDS = {MtnCallback.Door.SIGNED: "signed", MtnCallback.Door.TOKEN: "token URL"}


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        "attempted_at",
        "http_status",
        "succeeded",
        "duration",
        "triggered_by",
        "error",
        "response_excerpt",
    )
    readonly_fields = fields
    ordering = ("attempted_at", "id")

    @admin.display(description="HTTP status")
    def http_status(self, obj: DeliveryAttempt) -> str:
        return str(obj.status_code) if obj.status_code else "none"

    @admin.display(description="duration")
    def duration(self, obj: DeliveryAttempt) -> str:
        return f"{obj.duration_ms} ms"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MerchantDelivery)
class MerchantDeliveryAdmin(
    ObjectActionsMixin, ReadOnlyAdminMixin, IdentifierSearchMixin, admin.ModelAdmin
):
    change_form_template = "admin/gateway/change_form.html"
    list_display = (
        "event_id_display",
        "tenant",
        "event_type",
        "object_link",
        "state_display",
        "attempts_display",
        "last_status_display",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = (
        choice_words_filter("state", "state", DELIVERY_STATE_WORDS),
        "event_type",
        "tenant",
    )
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    uuid_search_fields = ("id", "object_id")
    prefix_search_fields = ("event_id",)
    search_help_text = (
        "An event id (evt_…, or its start), or the id of the payment or payout it is about "
        "(whole, or its first characters)."
    )
    inlines = (DeliveryAttemptInline,)
    actions = ("redeliver",)
    object_actions = ("redeliver",)
    fields = (
        "event_id_full",
        "tenant",
        "event_type",
        "object_link",
        "state",
        "url_display",
        "attempts_display",
        "last_http_status",
        "last_error",
        "next_attempt_at",
        "delivered_at",
        "created_at",
        "updated_at",
        "payload_display",
    )
    readonly_fields = fields

    @admin.display(description="object", ordering="object_id")
    def object_link(self, obj: MerchantDelivery) -> SafeString | str:
        return short_id_link(obj.object_type, obj.object_id)

    @admin.display(description="event id", ordering="event_id")
    def event_id_display(self, obj: MerchantDelivery) -> SafeString | str:
        return clipped(obj.event_id, width="short")

    @admin.display(description="state", ordering="state")
    def state_display(self, obj: MerchantDelivery) -> SafeString | str:
        return choice_label(DELIVERY_STATE_WORDS, obj.state, obj.get_state_display())

    @admin.display(description="event ID")
    def event_id_full(self, obj: MerchantDelivery) -> str:
        return obj.event_id

    @admin.display(description="attempts", ordering="attempt_count")
    def attempts_display(self, obj: MerchantDelivery) -> int:
        return obj.attempt_count

    @admin.display(description="last answer", ordering="last_status_code")
    def last_status_display(self, obj: MerchantDelivery) -> SafeString | str:
        if obj.last_status_code:
            return f"HTTP {obj.last_status_code}"
        return clipped(obj.last_error, width="short")

    @admin.display(description="last HTTP status")
    def last_http_status(self, obj: MerchantDelivery) -> str:
        return f"HTTP {obj.last_status_code}" if obj.last_status_code else "none"

    @admin.display(description="URL")
    def url_display(self, obj: MerchantDelivery) -> str:
        return obj.url or "- (none: the tenant had no webhook URL)"

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
            context["subtitle"] = f"{obj.event_id} · {obj.event_type} · {obj.get_state_display()}"
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="payload")
    def payload_display(self, obj: MerchantDelivery) -> SafeString:
        return json_block(obj.payload)

    # --- redeliver -----------------------------------------------------------------------

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        # Sends the same signed event again (merchants dedupe on webhook-id), audited; only
        # staff trusted to act ("Money operators"), not those who only look ("Support").
        return request.user.has_perm(REDELIVER_PERMISSION)

    @admin.action(description="Redeliver webhook", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: Any) -> None:
        deliveries = list(queryset[: MAX_ROWS_PER_NETWORK_ACTION + 1])
        if len(deliveries) > MAX_ROWS_PER_NETWORK_ACTION:
            self.message_user(
                request,
                f"Select at most {MAX_ROWS_PER_NETWORK_ACTION} deliveries at once (each one "
                "is a call to the merchant). Nothing was redelivered.",
                messages.ERROR,
            )
            return
        for delivery in deliveries:
            self._redeliver_one(request, delivery)

    def _redeliver_one(self, request: HttpRequest, delivery: MerchantDelivery) -> None:
        try:
            result = delivery_redeliver(delivery=delivery, actor=staff_actor(request))
        except NoWebhookUrl as exc:
            self.message_user(
                request,
                f"Webhook {delivery.event_id} not redelivered. {exc} Set one on the tenant's "
                "page, then redeliver. Nothing was sent and no attempt was recorded.",
                messages.WARNING,
            )
            return
        attempt = result.attempts.order_by("-attempted_at", "-id").first()
        if attempt is not None and attempt.succeeded:
            self.message_user(
                request,
                f"Webhook {result.event_id} redelivered: the merchant answered "
                f"HTTP {attempt.status_code}.",
                messages.SUCCESS,
            )
            return
        if attempt is not None and attempt.status_code is not None:
            why = f"the merchant answered HTTP {attempt.status_code}"
        else:
            why = (attempt.error if attempt is not None else "") or "no answer"
        self.message_user(
            request,
            f"Webhook {result.event_id} redelivery failed: {why}. The attempt is recorded "
            f"(delivery state: {result.get_state_display()}).",
            messages.ERROR,
        )


@admin.register(MtnCallback)
class MtnCallbackAdmin(ReadOnlyAdminMixin, IdentifierSearchMixin, admin.ModelAdmin):
    change_form_template = "admin/gateway/change_form.html"
    list_display = (
        "received_at",
        "door_display",
        "outcome_display",
        "reported_status",
        "confirmed_status",
        "object_link",
        "tenant",
    )
    list_filter = (
        choice_words_filter("door", "door", CALLBACK_DOOR_WORDS),
        choice_words_filter("outcome", "outcome", CALLBACK_OUTCOME_WORDS),
    )
    list_select_related = ("tenant",)
    date_hierarchy = "received_at"
    show_full_result_count = False
    uuid_search_fields = ("id", "object_id")
    search_help_text = (
        "A callback id, or the id of the payment or payout it is about (whole, or its first "
        "characters)."
    )
    fields = (
        "id_label",
        "received_at",
        "door",
        "method",
        "remote_address",
        "signature",
        "object_page_link",
        "tenant",
        "reported_status",
        "confirmation",
        "outcome",
        "outcome_detail",
        "processed_at",
        "headers_display",
        "raw_body_display",
    )
    readonly_fields = fields

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
            context["subtitle"] = (
                f"{obj.get_door_display()} callback, {admin_time(obj.received_at)}: "
                f"{obj.get_outcome_display()}"
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="object", ordering="object_id")
    def object_link(self, obj: MtnCallback) -> SafeString | str:
        return short_id_link(obj.object_type, obj.object_id)

    @admin.display(description="object")
    def object_page_link(self, obj: MtnCallback) -> SafeString | str:
        return object_admin_link(obj.object_type, obj.object_id)

    @admin.display(description="door", ordering="door")
    def door_display(self, obj: MtnCallback) -> SafeString | str:
        return choice_label(CALLBACK_DOOR_WORDS, obj.door, obj.get_door_display())

    @admin.display(description="outcome", ordering="outcome")
    def outcome_display(self, obj: MtnCallback) -> SafeString | str:
        return choice_label(CALLBACK_OUTCOME_WORDS, obj.outcome, obj.get_outcome_display())

    @admin.display(description="remote address")
    def remote_address(self, obj: MtnCallback) -> str:
        return obj.remote_addr or "-"

    @admin.display(description="signature")
    def signature(self, obj: MtnCallback) -> str:
        if obj.door == MtnCallback.Door.TOKEN:
            return "Not signed: the per-payment URL's secret token authenticated it."
        if obj.signature_valid:
            return "Valid: X-Signature-256 matched MTN_WEBHOOK_SECRET."
        if obj.signature_valid is None:
            return "Not checked (MTN_VERIFY_CALLBACKS was off)."
        return "Invalid."

    @admin.display(description="confirmed by MTN")
    def confirmation(self, obj: MtnCallback) -> str:
        if obj.confirmed_status:
            text = f"Yes: MTN's status endpoint says {obj.confirmed_status}."
        elif obj.next_attempt_at is not None:
            text = f"Not yet: the worker asks MTN again at {admin_time(obj.next_attempt_at)}."
        else:
            text = "No."
        if obj.confirm_attempts:
            tries = "try" if obj.confirm_attempts == 1 else "tries"
            text += f" ({obj.confirm_attempts} earlier {tries} to ask MTN failed.)"
        return text

    @admin.display(description="headers")
    def headers_display(self, obj: MtnCallback) -> SafeString:
        return json_block(obj.headers)

    @admin.display(description="raw body")
    def raw_body_display(self, obj: MtnCallback) -> SafeString:
        return text_block(obj.raw_body)
