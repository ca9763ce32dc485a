from django.apps import AppConfig


class ShellConfig(AppConfig):
    """What sits on top of the apps and may use every one of them: the worker's loop, the
    admin site and its dashboard, the metrics scrape."""

    name = "shell"
    verbose_name = "Operations"

    def ready(self) -> None:
        from shell import metrics

        metrics.install()  # MTN call latency and errors (mtn.client.call_observers)
