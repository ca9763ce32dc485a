from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from gateway import metrics
        from gateway.staff_groups import sync_after_migrate

        metrics.install()  # MTN call latency and errors (mtn.client.call_observers)
        # The staff groups and their permissions exist after every migrate, as Django's own
        # model permissions do (and again after a test database is flushed).
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="gateway-staff-groups")
