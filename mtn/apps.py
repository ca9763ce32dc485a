from django.apps import AppConfig


class MtnConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mtn"
