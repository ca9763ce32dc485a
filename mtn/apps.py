from django.apps import AppConfig


class MtnAppConfig(AppConfig):
    """MTN MoMo client, local simulator, and the MTN accounts (credentials as data)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "mtn"
    verbose_name = "MTN MoMo"
