from django.urls import path

from webhooks import views

urlpatterns = [
    path("webhooks/mtn", views.MtnSignedCallbackView.as_view(), name="mtn-callback-signed"),
    path("webhooks/mtn/health", views.MtnCallbackHealthView.as_view(), name="mtn-callback-health"),
    path("webhooks/mtn/<str:token>", views.MtnTokenCallbackView.as_view(), name="mtn-callback"),
]
