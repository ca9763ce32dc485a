from django.urls import path

from payments.api import views

urlpatterns = [
    path("payments", views.PaymentCollectionView.as_view(), name="payments"),
    path("payments/<str:transfer_id>", views.PaymentDetailView.as_view(), name="payment-detail"),
    path(
        "payments/<str:transfer_id>/events",
        views.PaymentEventsView.as_view(),
        name="payment-events",
    ),
    path(
        "payments/<str:transfer_id>/refunds",
        views.PaymentRefundsView.as_view(),
        name="payment-refunds",
    ),
    path("payouts", views.PayoutCollectionView.as_view(), name="payouts"),
    path("payouts/<str:transfer_id>", views.PayoutDetailView.as_view(), name="payout-detail"),
    path(
        "payouts/<str:transfer_id>/events", views.PayoutEventsView.as_view(), name="payout-events"
    ),
    path("refunds", views.RefundCollectionView.as_view(), name="refunds"),
    path("refunds/<str:transfer_id>", views.RefundDetailView.as_view(), name="refund-detail"),
    path(
        "refunds/<str:transfer_id>/events", views.RefundEventsView.as_view(), name="refund-events"
    ),
]
