"""The few things the gateway serves to a browser outside the API and the admin.

A favicon (browsers ask for it on every admin page), and a plain "not found" page for any
other path: with DEBUG on, Django's own 404 page would list every URL pattern.
"""

from __future__ import annotations

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

FAVICON = "gateway/favicon.svg"


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    # Served from the app's static file, so the admin's <link rel="icon"> and /favicon.ico
    # are the same picture. Chromium and Firefox take an SVG at /favicon.ico.
    path = finders.find(FAVICON)
    with open(path, "rb") as icon:  # type: ignore[arg-type]
        return HttpResponse(icon.read(), content_type="image/svg+xml")


def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """A plain 404 page, whatever DEBUG says: where the docs and the admin are, nothing more."""
    return TemplateResponse(request, "gateway/not_found.html", status=404)
