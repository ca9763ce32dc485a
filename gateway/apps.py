from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from gateway import metrics

        metrics.install()  # MTN call latency and errors (mtn.client.call_observers)
