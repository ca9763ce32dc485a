from django.apps import AppConfig


class MtnAppConfig(AppConfig):
    """MTN MoMo client and local simulator; no models."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "mtn"
    verbose_name = "MTN MoMo"
