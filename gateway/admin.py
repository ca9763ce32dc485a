"""Support console: site header, shared read-only helpers, the audit trail and idempotency keys.

Money records, the audit trail and MTN's messages are never edited by hand here; the only
writes the console makes go through the services (re-check, redeliver, tenant and key
management), each of which records an audit event with the staff user as actor.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import NoReverseMatch, path, reverse
from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from gateway.audit import Actor
from gateway.models import AuditEvent, IdempotencyKey

# Where an audit event's or a delivery's ``object_type`` is administered.
OBJECT_ADMIN_URL_NAMES = {
    "payment": "admin:payments_payment_change",
    "payout": "admin:payments_payout_change",
    "refund": "admin:payments_refund_change",
    "payout_batch": "admin:payments_payoutbatch_change",
    "tenant": "admin:tenants_tenant_change",
    "api_key": "admin:tenants_apikey_change",
}

# An action that calls MTN or a merchant once per row runs inside the admin's request.
MAX_ROWS_PER_NETWORK_ACTION = 20


def staff_actor(request: HttpRequest) -> Actor:
    return Actor.staff(request.user.get_username())


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def json_block(value: Any) -> SafeString:
    """JSON in a ``<pre>``, escaped (payloads and MTN bodies are untrusted text)."""
    return format_html('<pre class="gateway-json">{}</pre>', pretty_json(value))


def text_block(value: str) -> SafeString:
    return format_html('<pre class="gateway-json">{}</pre>', value)


def object_admin_url(object_type: str, object_id: Any) -> str | None:
    name = OBJECT_ADMIN_URL_NAMES.get(object_type)
    if not name or object_id in (None, ""):
        return None
    try:
        return reverse(name, args=[str(object_id)])
    except NoReverseMatch:
        return None


def object_admin_link(object_type: str, object_id: Any) -> SafeString | str:
    """``payment 3f2c…`` linked to its admin page, or plain text when there is none."""
    if not object_type and object_id in (None, ""):
        return "-"
    label = f"{object_type} {object_id}".strip()
    url = object_admin_url(object_type, object_id)
    if url is None:
        return label
    return format_html('<a href="{}">{}</a>', url, label)


def model_admin_link(obj: Model | None) -> SafeString | str:
    if obj is None:
        return "-"
    opts = obj._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return str(obj)
    return format_html('<a href="{}">{}</a>', url, str(obj))


def as_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


# --- one way to show a time, an id, a flag ---------------------------------------------------

# The admin's one time format (gateway/formats/en/formats.py gives Django's own fields the
# same): seconds and the zone, so that a list, a page, the trail and an attempt agree.
TIME_FORMAT = "Y-m-d H:i:s T"


def admin_time(value: datetime | None) -> str:
    """``2026-11-29 09:50:12 UTC``, or ``-``."""
    if value is None:
        return "-"
    return dateformat.format(timezone.localtime(value), TIME_FORMAT)


def short_id(value: Any) -> SafeString | str:
    """A UUID's first segment, the whole id on hover (and in the page's text for search)."""
    if value in (None, ""):
        return "-"
    text = str(value)
    return format_html('<span class="gateway-id" title="{}">{}</span>', text, text.split("-", 1)[0])


def short_id_link(object_type: str, object_id: Any) -> SafeString | str:
    """``payment 3f2c1a9b`` linked to its page, the whole id on hover."""
    if object_id in (None, ""):
        return object_type or "-"
    label = (
        format_html("{} {}", object_type, short_id(object_id))
        if object_type
        else short_id(object_id)
    )
    url = object_admin_url(object_type, object_id)
    if url is None:
        return label
    return format_html('<a href="{}">{}</a>', url, label)


def review_flag(needs_review: bool) -> SafeString | str:
    """Shown only when true: a normal row stays quiet."""
    if not needs_review:
        return ""
    return format_html(
        '<span class="gateway-flag" title="{}">needs review</span>',
        "A callback or a re-check disagreed with this record; a person should look.",
    )


def clipped(text: str | None, *, width: str = "") -> SafeString | str:
    """Free text cut to the column's width (``short`` or ``wide``), whole on hover."""
    if not text:
        return "-"
    css = f"gateway-clip gateway-clip-{width}" if width else "gateway-clip"
    return format_html('<span class="{}" title="{}">{}</span>', css, text, text)


def choice_label(words: dict[str, str], value: str, label: str) -> SafeString | str:
    """A choice's short word for a list column, its full label on hover."""
    return format_html('<span title="{}">{}</span>', label, words.get(value, label))


def failure_reason(code: str, message: str) -> SafeString | str:
    """``APPROVAL_REJECTED`` with the sentence on hover; ``-`` when nothing failed."""
    if not code:
        return "-"
    return format_html(
        '<span class="gateway-reason gateway-clip" title="{}">{}</span>', message or code, code
    )


def choice_words_filter(field: str, title: str, words: dict[str, str]) -> type:
    """A list filter on a choice field that offers the list's short words, not the long labels.

    Its parameter is Django's own (``state__exact=…``), so bookmarked filters keep working.
    """

    class ChoiceWordsFilter(admin.SimpleListFilter):
        parameter_name = f"{field}__exact"

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return list(words.items())

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            if self.value() in words:
                return queryset.filter(**{field: self.value()})
            return queryset

    ChoiceWordsFilter.title = title
    return ChoiceWordsFilter


# --- search as staff type ------------------------------------------------------------------

# A term that could be a phone number as people write it: +256 77 123-4567, (0)77...
_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{6,}$")
_HEX = re.compile(r"^[0-9a-f]+$")
# Fewer hex digits than this match too many ids to be what someone meant.
MIN_ID_PREFIX = 4


def phone_digits(term: str) -> str | None:
    """``+256 77 123 4567`` -> ``256771234567`` (stored numbers are MSISDN digits).

    A number in national format (``0772 123456``, as people write it in Uganda, Ghana or
    Zambia) loses its trunk ``0``: what follows is the end of the stored international number.
    """
    if not _PHONE_LIKE.match(term):
        return None
    digits = re.sub(r"\D", "", term)
    if digits.startswith("0") and not term.lstrip().startswith("+"):
        digits = digits.lstrip("0")
    return digits or None


def uuid_prefix_range(term: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The ids that start with ``term`` (hex digits, hyphens anywhere) as an inclusive range.

    A range on the UUID column uses its primary-key or unique index on every database,
    where ``startswith`` on the id's text would read every row.
    """
    digits = term.replace("-", "").lower()
    if not (MIN_ID_PREFIX <= len(digits) <= 32) or not _HEX.match(digits):
        return None
    low = uuid.UUID(digits.ljust(32, "0"))
    high = uuid.UUID(digits.ljust(32, "f"))
    return low, high


class CountWhenFilteredChangeList(ChangeList):
    """A list that skips the full count (``show_full_result_count = False``: a COUNT over a
    large table on every page) yet knows it when nothing narrows the list: the count shown is
    then the whole, so Django's "N results (Show all)" is not offered on an unfiltered list."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        if self.full_result_count is None and not self.query and not self.has_active_filters:
            self.full_result_count = self.result_count


class ReadOnlyAdminMixin:
    """Nobody, superusers included, adds, changes or deletes these rows in the console."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        # The records' lists are the large ones, which skip the full count.
        return CountWhenFilteredChangeList

    @admin.display(description="ID")
    def id_label(self, obj: Any) -> str:
        # The primary key, labelled "ID" where Django would write "Id".
        return str(obj.pk)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ObjectActionsMixin:
    """Buttons on a change page that run one of the model admin's actions on that object.

    ``object_actions`` names actions of ``actions``; a button shows only when the action is
    allowed to the user (its ``permissions``), and the action itself writes the messages.
    Use with a change form template that extends ``admin/gateway/change_form.html``.
    """

    object_actions: tuple[str, ...] = ()

    def _object_action_url_name(self) -> str:
        opts = self.model._meta
        return f"{opts.app_label}_{opts.model_name}_object_action"

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/actions/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=self._object_action_url_name(),
            ),
            *super().get_urls(),
        ]

    def object_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if action not in self.object_actions:
            raise Http404(f"No action {action!r} here.")
        allowed = self.get_actions(request)
        if action not in allowed:
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.model._meta.verbose_name} with id {object_id!r}.")
        func, _name, _description = allowed[action]
        func(self, request, self.get_queryset(request).filter(pk=obj.pk))
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
        )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None and self.object_actions:
            allowed = self.get_actions(request)
            context["object_actions"] = [
                {
                    "name": name,
                    "label": allowed[name][2],
                    "url": reverse(
                        f"admin:{self._object_action_url_name()}", args=[quote(obj.pk), name]
                    ),
                }
                for name in self.object_actions
                if name in allowed
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)


class IdentifierSearchMixin:
    """Search as staff type, with lookups that can use an index.

    ``uuid_search_fields`` match a whole UUID (in any case or spelling) or its start, such as
    the first segment shown in the lists; ``exact_search_fields`` match the term exactly;
    ``prefix_search_fields`` start with it; ``partial_search_fields`` contain it;
    ``phone_search_fields`` contain its digits (``+256 77…`` finds ``25677…``).
    """

    uuid_search_fields: tuple[str, ...] = ()
    exact_search_fields: tuple[str, ...] = ()
    prefix_search_fields: tuple[str, ...] = ()
    partial_search_fields: tuple[str, ...] = ()
    phone_search_fields: tuple[str, ...] = ()

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        # Non-empty, so that Django shows the search box; the lookups are built below.
        return (
            self.uuid_search_fields
            + self.exact_search_fields
            + self.prefix_search_fields
            + self.partial_search_fields
            + self.phone_search_fields
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        parsed = as_uuid(term)
        query = Q()
        if parsed is not None:
            for field in self.uuid_search_fields:
                query |= Q(**{field: parsed})
        else:
            id_range = uuid_prefix_range(term)
            for field in self.uuid_search_fields if id_range else ():
                # gte/lte rather than range: a foreign key (a refund's payment_id) has no range.
                query |= Q(**{f"{field}__gte": id_range[0], f"{field}__lte": id_range[1]})
        for field in self.exact_search_fields:
            query |= Q(**{field: term})
            if parsed is not None and str(parsed) != term:
                # UUIDs stored as text (the audit trail's object_id) are lower-case, hyphenated.
                query |= Q(**{field: str(parsed)})
        for field in self.prefix_search_fields:
            query |= Q(**{f"{field}__startswith": term})
        for field in self.partial_search_fields:
            query |= Q(**{f"{field}__icontains": term})
        digits = phone_digits(term)
        for field in self.phone_search_fields if digits else ():
            query |= Q(**{f"{field}__contains": digits})
        if not query:
            return queryset.none(), False
        return queryset.filter(query), False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, IdentifierSearchMixin, admin.ModelAdmin):
    list_display = ("created_at", "action", "object_link", "tenant", "actor_label", "request_id")
    list_filter = ("object_type", "action", "actor_type")
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    exact_search_fields = ("object_id", "actor_id", "request_id")
    prefix_search_fields = ("action", "object_id")
    search_help_text = (
        "An object id (whole, or its first characters), an actor id (a username, a key "
        "prefix), a request id, or the start of an action (payment.)."
    )
    ordering = ("-created_at", "-id")
    fields = (
        "created_at",
        "action",
        "object_type",
        "object_link",
        "tenant",
        "actor_type",
        "actor_id",
        "request_id",
        "data_display",
    )
    readonly_fields = fields

    @admin.display(description="object")
    def object_link(self, obj: AuditEvent) -> SafeString | str:
        return short_id_link(obj.object_type, obj.object_id)

    @admin.display(description="actor", ordering="actor_type")
    def actor_label(self, obj: AuditEvent) -> str:
        return obj.actor

    @admin.display(description="data")
    def data_display(self, obj: AuditEvent) -> SafeString:
        return json_block(obj.data)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, IdentifierSearchMixin, admin.ModelAdmin):
    list_display = ("key", "tenant", "state", "response_status", "created_at", "expires_at")
    list_filter = ("state", "tenant")
    list_select_related = ("tenant",)
    show_full_result_count = False
    uuid_search_fields = ("resource_id",)
    exact_search_fields = ("key",)
    search_help_text = "The merchant's Idempotency-Key, or the id of the object it created."
    fields = (
        "tenant",
        "key",
        "fingerprint",
        "state",
        "resource_link",
        "response_status",
        "response_display",
        "locked_at",
        "created_at",
        "expires_at",
    )
    readonly_fields = fields

    @admin.display(description="resource")
    def resource_link(self, obj: IdempotencyKey) -> SafeString | str:
        return object_admin_link(obj.resource_type, obj.resource_id)

    @admin.display(description="response body")
    def response_display(self, obj: IdempotencyKey) -> SafeString | str:
        return "-" if obj.response_body is None else json_block(obj.response_body)
