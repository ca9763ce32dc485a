from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gateway import health, metrics
from gateway.query import trailing_slash_not_found

# A database outage that escapes every view and middleware is still a 503, not a 500.
handler500 = "gateway.middleware.server_error"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/v1/", include("payments.api.urls")),
    path("api/v1/", include("webhooks.urls")),
    path("api/v1/", include("ledger.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    # Last: only API paths nothing above answered; a 404 that points at the path without "/".
    re_path(r"^api/.+/$", trailing_slash_not_found),
]

if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/", include("bench.baseline.urls")))
