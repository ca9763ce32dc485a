from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gateway import health, pages
from gateway.query import trailing_slash_not_found

# A database outage that escapes every view and middleware is still a 503, not a 500.
handler500 = "gateway.middleware.server_error"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("shell.urls")),
    path("api/v1/", include("payments.api.urls")),
    path("api/v1/", include("webhooks.urls")),
    path("api/v1/", include("payments.api.payers")),
    path("api/v1/", include("ledger.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # The documentation's addresses typed without their slash (no API path has one).
    path("api/schema", RedirectView.as_view(url="/api/schema/", query_string=True)),
    path("api/docs", RedirectView.as_view(url="/api/docs/", query_string=True)),
    path("admin/", admin.site.urls),
    # APPEND_SLASH is off (the API's paths have none): the admin's address typed bare still works.
    path("admin", RedirectView.as_view(url="/admin/", permanent=False)),
    path("favicon.ico", pages.favicon, name="favicon"),
    # API paths nothing above answered, ending in "/": a 404 that points at the path without.
    re_path(r"^api/.+/$", trailing_slash_not_found),
]

if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/", include("bench.baseline.urls")))

# Last: any other path outside the API gets a plain 404 page, not DEBUG's list of patterns
# (unknown /api/ paths keep their JSON error envelope).
urlpatterns.append(re_path(r"^(?!api/)(?P<path>.*)$", pages.not_found))
