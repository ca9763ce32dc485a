from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from gateway.staff_groups import sync_after_migrate

        # The staff groups and their permissions exist after every migrate, as Django's own
        # model permissions do (and again after a test database is flushed).
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="gateway-staff-groups")
