"""This app's error types."""

from gateway.errors import GatewayError


class InvalidTransition(GatewayError):
    code = "invalid_transition"
    http_status = 409
    default_message = "This status change is not allowed."


class PaymentNotRefundable(GatewayError):
    code = "payment_not_refundable"
    http_status = 422
    default_message = "Only a SUCCESSFUL payment can be refunded."


class RefundExceedsPayment(GatewayError):
    code = "refund_exceeds_payment"
    http_status = 422
    default_message = "The refund is larger than what is left to refund of the payment."


class CurrencyNotSupported(GatewayError):
    code = "currency_not_supported"
    http_status = 422
    default_message = "No MTN account carries this currency."


class PaymentUnderReview(GatewayError):
    code = "payment_under_review"
    http_status = 422
    default_message = (
        "This payment, or one of its refunds, is flagged for review; it cannot be refunded now."
    )
