from django.apps import AppConfig


class ShellConfig(AppConfig):
    """What sits on top of the apps and may use every one of them: the worker's loop, the
    admin site and its dashboard, the metrics scrape."""

    name = "shell"
    verbose_name = "Operations"
    default = True  # this module holds another AppConfig (the TOTP devices' heading)

    def ready(self) -> None:
        from shell import metrics

        metrics.install()  # MTN call latency and errors (mtn.client.call_observers)


class TwoFactorDevicesConfig(AppConfig):
    """django-otp's TOTP devices under a heading staff can read (its own is "OTP_TOTP")."""

    name = "django_otp.plugins.otp_totp"
    label = "otp_totp"
    verbose_name = "Two-factor devices"
    default_auto_field = "django.db.models.AutoField"
