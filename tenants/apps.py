from django.apps import AppConfig


class TenantsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tenants"

    def ready(self) -> None:
        # Registers the OpenAPI description of the API-key authentication.
        from tenants import schema  # noqa: F401
