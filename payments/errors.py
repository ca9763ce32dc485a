"""This app's error types."""

from gateway.errors import GatewayError


class InvalidTransition(GatewayError):
    code = "invalid_transition"
    http_status = 409
    default_message = "This status change is not allowed."
