from django.urls import path

from payments.api import views

urlpatterns = [
    path("payments", views.PaymentCollectionView.as_view(), name="payments"),
    path("payments/<str:id>", views.PaymentDetailView.as_view(), name="payment-detail"),
    path(
        "payments/<str:id>/events",
        views.PaymentEventsView.as_view(),
        name="payment-events",
    ),
    path("payouts", views.PayoutCollectionView.as_view(), name="payouts"),
    path("payouts/<str:id>", views.PayoutDetailView.as_view(), name="payout-detail"),
    path("payouts/<str:id>/events", views.PayoutEventsView.as_view(), name="payout-events"),
]
