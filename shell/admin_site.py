"""The admin site: the support console's front page (the dashboard) and its sign-in rules.

Installed as Django's default admin site (``shell.admin_config.GatewayAdminConfig``), so every
``@admin.register`` lands here. Sign-in is the password (throttled per address and per
username), then, with ``ADMIN_REQUIRE_2FA`` on, a one-time password (``shell.otp``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from shell import otp
from shell.admin_login import throttled


class GatewayAdminSite(admin.AdminSite):
    site_header = "momo-gateway support"
    site_title = "momo-gateway support"
    index_title = "Dashboard"
    index_template = "admin/shell/index.html"
    # "View site": the gateway has no web pages of its own; its API documentation is the site.
    site_url = "/api/docs/"
    # An unknown admin path falls through to the plain 404 page (gateway.pages), not to
    # DEBUG's page listing every URL pattern.
    final_catch_all_view = False
    # The collapsible app menu takes a quarter of a 1366 px screen from the lists; the
    # breadcrumbs and the front page lead everywhere it does.
    enable_nav_sidebar = False

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not otp.second_factor_required() or otp.is_verified(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if otp.awaits_second_factor(request):
            return otp.redirect_to_second_factor(request)
        response = throttled(super().login)(request, extra_context)
        # The password was right: straight on to the code, not round the index.
        password_passed = request.method == "POST" and response.status_code == 302
        if password_passed and otp.awaits_second_factor(request):
            return otp.redirect_to_second_factor(request)
        return response

    def get_urls(self) -> list[Any]:
        urls: list[URLPattern] = [
            path("otp/", self._otp_view(otp.verify_view), name="otp_verify"),
            path("otp/enrol/", self._otp_view(otp.enrol_view), name="otp_enrol"),
        ]
        return [*urls, *super().get_urls()]

    def _otp_view(self, view: Any) -> Any:
        # Not admin_view: these pages are for a staff member the site does not let in yet.
        def wrapped(request: HttpRequest) -> HttpResponse:
            request.current_app = self.name
            context = {**self.each_context(request), "site_header": self.site_header}
            return view(request, context=context)

        return never_cache(csrf_protect(wrapped))

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        from shell.dashboard import dashboard_for

        context = dict(extra_context or {})
        context["dashboard"] = dashboard_for(user=request.user, now=timezone.now())
        return super().index(request, context)
