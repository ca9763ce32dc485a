"""The admin's front page for support and operators: how today and this week are going.

Read-only, and cheap enough to load on every visit to ``/admin/``: one grouped query per kind
of transfer (payments, payouts, and refunds where that model exists) for the last 14 days,
one each for the oldest pending payment and payout, one for the webhook backlog and one for
the MTN callbacks awaiting confirmation. Each is served by an index (see the comments at
each query); ``tests/budgets`` holds the count. The chart is an inline SVG drawn here, so
the page asks no other host for anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

CHART_DAYS = 14
STATUSES = ("SUCCESSFUL", "FAILED", "PENDING")
# Colour-blind-safe enough: blue-green, vermilion, grey; each bar also has a text title.
STATUS_COLOURS = {"SUCCESSFUL": "#1a9e77", "FAILED": "#d95f02", "PENDING": "#9e9e9e"}
# (app label, model name, the word staff use): refunds only once that model exists.
TRANSFER_KINDS = (
    ("payments", "Payment", "payments"),
    ("payments", "Payout", "payouts"),
    ("payments", "Refund", "refunds"),
)


@dataclass
class KindSummary:
    """One kind of transfer: counts by status today and this week, and per day."""

    label: str
    model: Any
    list_url: str
    today: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    week: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    per_day: dict[date, dict[str, int]] = field(default_factory=dict)
    succeeded_today: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount
    needs_review: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # failure code -> this week's count
    oldest_pending: Any = None
    chart_svg: SafeString | str = ""

    @property
    def oldest_pending_url(self) -> str:
        if self.oldest_pending is None:
            return ""
        opts = self.model._meta
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change", args=[self.oldest_pending.pk]
        )

    @property
    def today_total(self) -> int:
        return sum(self.today.values())

    @property
    def week_total(self) -> int:
        return sum(self.week.values())

    @property
    def success_rate(self) -> str:
        """Of this week's finished ones, the share that succeeded ("-" when none finished)."""
        done = self.week["SUCCESSFUL"] + self.week["FAILED"]
        if not done:
            return "-"
        return f"{100 * self.week['SUCCESSFUL'] / done:.1f}%"

    @property
    def succeeded_today_text(self) -> str:
        from gateway.money import format_amount

        if not self.succeeded_today:
            return "-"
        return ", ".join(
            f"{format_amount(amount, currency)} {currency}"
            for currency, amount in sorted(self.succeeded_today.items())
        )


@dataclass(frozen=True)
class ErrorCount:
    code: str
    counts: list[int]  # in the order of the dashboard's kinds

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class Backlog:
    waiting: int  # deliveries with an attempt scheduled
    overdue: int  # of which the time has come (the worker is behind, or stopped)
    oldest_created_at: datetime | None
    list_url: str


@dataclass
class Dashboard:
    now: datetime
    today_start: datetime
    week_start: datetime
    days: list[date]
    kinds: list[KindSummary]
    errors: list[ErrorCount]
    backlog: Backlog | None
    callbacks_waiting: int | None


def _model(app_label: str, name: str) -> Any:
    """The model, or None before the app or model exists (refunds arrive in their own time)."""
    try:
        return apps.get_model(app_label, name)
    except LookupError:
        return None


def _changelist(model: Any) -> str:
    opts = model._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    except NoReverseMatch:
        return ""


def _can_view(user: Any, model: Any) -> bool:
    opts = model._meta
    return user.has_perm(f"{opts.app_label}.view_{opts.model_name}")


def _all_tenants() -> QuerySet:
    from tenants.models import Tenant

    return Tenant.objects.values("pk")


def _kind_summary(
    model: Any, label: str, *, start: datetime, today_start: datetime, week_start: datetime
) -> KindSummary:
    summary = KindSummary(label=label, model=model, list_url=_changelist(model))
    fields = {field.name for field in model._meta.get_fields()}
    # A kind without a failure code or a review flag (a refund may differ) still counts.
    group_by = ["day", "status", *(name for name in ("failure_code", "currency") if name in fields)]
    numbers: dict[str, Any] = {
        "count": Count("pk"),
        "today": Count("pk", filter=Q(created_at__gte=today_start)),
        "week": Count("pk", filter=Q(created_at__gte=week_start)),
    }
    if "amount" in fields:
        numbers["amount"] = Sum("amount")
    if "needs_review" in fields:
        # Every flagged one, however old (a late contradiction flags an old object); the
        # partial index on needs_review holds only those.
        summary.needs_review = model.objects.filter(needs_review=True).count()
    # Filtering on every tenant looks redundant: it lets the database walk the
    # (tenant, -created_at) index per tenant instead of reading the whole table.
    scope = {"tenant__in": _all_tenants()} if "tenant" in fields else {}
    rows = (
        model.objects.filter(created_at__gte=start, **scope)
        .annotate(day=TruncDate("created_at"))
        .values(*group_by)
        .annotate(**numbers)
        .order_by()
    )
    for row in rows:
        status = row["status"]
        day_counts = summary.per_day.setdefault(row["day"], dict.fromkeys(STATUSES, 0))
        day_counts[status] = day_counts.get(status, 0) + row["count"]
        summary.today[status] = summary.today.get(status, 0) + row["today"]
        summary.week[status] = summary.week.get(status, 0) + row["week"]
        if status == "SUCCESSFUL" and row["today"] and "currency" in row and "amount" in row:
            # Today's rows are all in today's group (day == today): the sum is today's.
            summary.succeeded_today[row["currency"]] = (
                summary.succeeded_today.get(row["currency"], Decimal(0)) + row["amount"]
            )
        if status == "FAILED" and row.get("failure_code") and row["week"]:
            code = row["failure_code"]
            summary.errors[code] = summary.errors.get(code, 0) + row["week"]
    return summary


def _oldest_pending(model: Any) -> Any:
    # A pending transfer always has work scheduled (submit or poll), so the small partial
    # index on next_attempt_at holds every pending row: no scan of finished ones.
    if not hasattr(model, "next_attempt_at"):
        return None
    return (
        model.objects.filter(next_attempt_at__isnull=False, status="PENDING")
        .select_related("tenant")
        .order_by("created_at", "pk")
        .first()
    )


def dashboard_for(*, user: Any, now: datetime) -> Dashboard | None:
    """What this staff member may see of today and this week, or None if nothing."""
    today_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = today_start - timedelta(days=today_start.weekday())  # Monday
    start = today_start - timedelta(days=CHART_DAYS - 1)
    days = [(start + timedelta(days=offset)).date() for offset in range(CHART_DAYS)]

    kinds: list[KindSummary] = []
    for app_label, name, label in TRANSFER_KINDS:
        model = _model(app_label, name)
        if model is None or not _can_view(user, model):
            continue
        if not {"status", "created_at"} <= {field.name for field in model._meta.get_fields()}:
            continue  # not a transfer as the dashboard counts them
        summary = _kind_summary(
            model, label, start=start, today_start=today_start, week_start=week_start
        )
        if label in ("payments", "payouts"):
            summary.oldest_pending = _oldest_pending(model)
        summary.chart_svg = bar_chart(label, days, summary.per_day)
        kinds.append(summary)

    codes = sorted({code for summary in kinds for code in summary.errors})
    errors = sorted(
        (ErrorCount(code, [summary.errors.get(code, 0) for summary in kinds]) for code in codes),
        key=lambda error: (-error.total, error.code),
    )

    backlog = None
    delivery_model = _model("webhooks", "MerchantDelivery")
    if delivery_model is not None and _can_view(user, delivery_model):
        # The partial index on next_attempt_at holds exactly the deliveries still to try.
        numbers = delivery_model.objects.filter(next_attempt_at__isnull=False).aggregate(
            waiting=Count("pk"),
            overdue=Count("pk", filter=Q(next_attempt_at__lte=now)),
            oldest=Min("created_at"),
        )
        backlog = Backlog(
            waiting=numbers["waiting"],
            overdue=numbers["overdue"],
            oldest_created_at=numbers["oldest"],
            list_url=_changelist(delivery_model),
        )

    callbacks_waiting = None
    callback_model = _model("webhooks", "MtnCallback")
    if callback_model is not None and _can_view(user, callback_model):
        callbacks_waiting = callback_model.objects.filter(next_attempt_at__isnull=False).count()

    if not kinds and backlog is None and callbacks_waiting is None:
        return None
    return Dashboard(
        now=now,
        today_start=today_start,
        week_start=week_start,
        days=days,
        kinds=kinds,
        errors=errors,
        backlog=backlog,
        callbacks_waiting=callbacks_waiting,
    )


# --- the chart -----------------------------------------------------------------------------

# About the width a chart is shown at on a 1366 px screen, so that its text is not scaled down.
WIDTH, HEIGHT = 400, 170
LEFT, RIGHT, TOP, BOTTOM = 32, 8, 12, 28


def _nice_ceiling(value: int) -> int:
    """1, 2, 5, 10, 20, 50 … at or above the value: round numbers on the axis."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def bar_chart(label: str, days: list[date], per_day: dict[date, dict[str, int]]) -> SafeString:
    """Stacked bars per day (successful, failed, pending), an axis, a title on every bar."""
    totals = [sum(per_day.get(day, {}).values()) for day in days]
    top = _nice_ceiling(max([*totals, 1]))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(days)
    bar_w = slot * 0.7
    parts: list[SafeString] = []
    # Gridlines at 0, half and the top; the half only where it is a whole number.
    for fraction in (0, 0.5, 1) if top % 2 == 0 else (0, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/>'
                '<text x="{}" y="{}" class="axis" text-anchor="end">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                f"{y:.1f}",
                f"{y:.1f}",
                LEFT - 4,
                f"{y + 4:.1f}",
                f"{top * fraction:g}",
            )
        )
    for index, day in enumerate(days):
        counts = per_day.get(day, {})
        x = LEFT + index * slot + (slot - bar_w) / 2
        base = TOP + plot_h
        for status in STATUSES:
            count = counts.get(status, 0)
            if not count:
                continue
            height = plot_h * count / top
            base -= height
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" data-status="{}">'
                    "<title>{}: {} {}</title></rect>",
                    f"{x:.1f}",
                    f"{base:.1f}",
                    f"{bar_w:.1f}",
                    f"{height:.1f}",
                    STATUS_COLOURS[status],
                    status,
                    day.isoformat(),
                    count,
                    status.lower(),
                )
            )
        if (len(days) - 1 - index) % 2 == 0:  # every other day, ending on today
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="axis" text-anchor="middle">{}</text>',
                    f"{x + bar_w / 2:.1f}",
                    HEIGHT - BOTTOM + 14,
                    day.strftime("%d %b"),
                )
            )
    legend = format_html_join(
        "",
        '<span class="gateway-legend"><i style="background:{}"></i>{}</span>',
        ((STATUS_COLOURS[status], status.lower()) for status in STATUSES),
    )
    svg = format_html(
        '<svg class="gateway-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        WIDTH,
        HEIGHT,
        f"{label} per day, last {len(days)} days, by status",
        mark_safe("".join(parts)),  # noqa: S308 - every part was built by format_html
    )
    return format_html(
        '<figure class="gateway-figure">{}<figcaption>{}</figcaption></figure>', svg, legend
    )
