from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        # Every process, the ``mtn_account_set`` command's included, must move the routing
        # cache's generation when an MTN account changes.
        from payments import routing

        routing.ready()
