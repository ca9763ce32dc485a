from django.urls import path

from shell import metrics

urlpatterns = [
    path("metrics", metrics.metrics_view, name="metrics"),
]
