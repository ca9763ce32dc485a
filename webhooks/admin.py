"""Support console for merchant webhook deliveries (with redelivery) and MTN callbacks.

Both are records of what was sent or received, so they are read-only. "Redeliver webhook"
makes one more attempt now through ``delivery_redeliver``, with the same ``webhook-id``,
recorded as an attempt and in the audit trail.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.safestring import SafeString

from gateway.admin import (
    MAX_ROWS_PER_NETWORK_ACTION,
    IdentifierSearchMixin,
    ObjectActionsMixin,
    ReadOnlyAdminMixin,
    json_block,
    object_admin_link,
    staff_actor,
    text_block,
)
from webhooks.delivery import delivery_redeliver
from webhooks.models import DeliveryAttempt, MerchantDelivery, MtnCallback


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        "attempted_at",
        "status_code",
        "succeeded",
        "duration_ms",
        "triggered_by",
        "error",
        "response_excerpt",
    )
    readonly_fields = fields
    ordering = ("attempted_at", "id")

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
        "event_id",
        "tenant",
        "event_type",
        "object_link",
        "state",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("state", "event_type", "tenant")
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    uuid_search_fields = ("id", "object_id")
    exact_search_fields = ("event_id",)
    search_help_text = "An event id (evt_…), or the id of the payment or payout it is about."
    inlines = (DeliveryAttemptInline,)
    actions = ("redeliver",)
    object_actions = ("redeliver",)
    fields = (
        "event_id",
        "tenant",
        "event_type",
        "object_link",
        "state",
        "url",
        "attempt_count",
        "last_status_code",
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
        return object_admin_link(obj.object_type, obj.object_id)

    @admin.display(description="payload")
    def payload_display(self, obj: MerchantDelivery) -> SafeString:
        return json_block(obj.payload)

    # --- redeliver -----------------------------------------------------------------------

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        # Sends the same signed event again (merchants dedupe on webhook-id), audited.
        return self.has_view_permission(request)

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
        result = delivery_redeliver(delivery=delivery, actor=staff_actor(request))
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
        "door",
        "outcome",
        "reported_status",
        "confirmed_status",
        "object_link",
        "tenant",
    )
    list_filter = ("door", "outcome")
    list_select_related = ("tenant",)
    date_hierarchy = "received_at"
    show_full_result_count = False
    uuid_search_fields = ("id", "object_id")
    search_help_text = "A callback id, or the id of the payment or payout it is about."
    fields = (
        "id",
        "received_at",
        "door",
        "method",
        "remote_addr",
        "signature_valid",
        "object_link",
        "tenant",
        "reported_status",
        "confirmed_status",
        "outcome",
        "outcome_detail",
        "confirm_attempts",
        "next_attempt_at",
        "processed_at",
        "headers_display",
        "raw_body_display",
    )
    readonly_fields = fields

    @admin.display(description="object", ordering="object_id")
    def object_link(self, obj: MtnCallback) -> SafeString | str:
        return object_admin_link(obj.object_type, obj.object_id)

    @admin.display(description="headers")
    def headers_display(self, obj: MtnCallback) -> SafeString:
        return json_block(obj.headers)

    @admin.display(description="raw body")
    def raw_body_display(self, obj: MtnCallback) -> SafeString:
        return text_block(obj.raw_body)
