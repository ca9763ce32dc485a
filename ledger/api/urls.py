from django.urls import path

from ledger.api import views

urlpatterns = [
    path("balance", views.BalanceView.as_view(), name="balance"),
    path(
        "balance/transactions.csv",
        views.BalanceTransactionCsvView.as_view(),
        name="balance-transactions-csv",
    ),
    path(
        "balance/transactions",
        views.BalanceTransactionListView.as_view(),
        name="balance-transactions",
    ),
]
