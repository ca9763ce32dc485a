from django.urls import path

from payments.api import batches, views

urlpatterns = [
    path("payments", views.PaymentCollectionView.as_view(), name="payments"),
    path("payments/<str:id>", views.PaymentDetailView.as_view(), name="payment-detail"),
    path(
        "payments/<str:id>/events",
        views.PaymentEventsView.as_view(),
        name="payment-events",
    ),
    path(
        "payments/<str:id>/refunds",
        views.PaymentRefundsView.as_view(),
        name="payment-refunds",
    ),
    path("payouts", views.PayoutCollectionView.as_view(), name="payouts"),
    path("payouts/<str:id>", views.PayoutDetailView.as_view(), name="payout-detail"),
    path("payouts/<str:id>/events", views.PayoutEventsView.as_view(), name="payout-events"),
    path("payout_batches", batches.PayoutBatchCollectionView.as_view(), name="payout-batches"),
    path(
        "payout_batches/<str:id>",
        batches.PayoutBatchDetailView.as_view(),
        name="payout-batch-detail",
    ),
    path(
        "payout_batches/<str:id>/payouts.csv",
        batches.PayoutBatchPayoutsCsvView.as_view(),
        name="payout-batch-payouts-csv",
    ),
    path(
        "payout_batches/<str:id>/payouts",
        batches.PayoutBatchPayoutsView.as_view(),
        name="payout-batch-payouts",
    ),
    path("refunds", views.RefundCollectionView.as_view(), name="refunds"),
    path("refunds/<str:id>", views.RefundDetailView.as_view(), name="refund-detail"),
    path("refunds/<str:id>/events", views.RefundEventsView.as_view(), name="refund-events"),
]
