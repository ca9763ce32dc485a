"""Writes for payments, payouts and refunds, by a transfer's life.

- ``create``: stored ``PENDING`` with its MTN reference, before anything is sent to MTN
  (a refund after checking what is left of its payment);
- ``submit``: sent to MTN exactly once under that one reference, so a retry never pays twice;
- ``settle``: polled, MTN's word applied, and ``transfer_transition``, the one status writer.

``funds`` holds the money rules (the ledger postings each step makes), ``common`` what the
stages share (the client of the transfer's MTN account, the row lock). Callers import from this
package: ``from payments import services`` or ``from payments.services import ...``.
"""

from payments.routing import transfer_account, transfer_client
from payments.services.common import (
    _client_local,
    callback_url_for,
    in_request_lease,
    lock_transfer,
)
from payments.services.create import (
    refund_create,
    refund_create_and_submit,
    transfer_create,
    transfer_create_and_submit,
)
from payments.services.funds import funds_on_final, funds_reserve, uses_platform_money
from payments.services.resolve import (
    ACCEPT_MTN,
    KEEP,
    Resolution,
    ResolutionRefused,
    transfer_resolve,
)
from payments.services.settle import (
    Applied,
    ApplyResult,
    Transition,
    transfer_apply_mtn_status,
    transfer_fetch_mtn_status,
    transfer_flag_for_review,
    transfer_mismatch,
    transfer_poll,
    transfer_poll_job,
    transfer_recheck,
    transfer_transition,
)
from payments.services.submit import (
    SUBMISSION_OUTCOMES,
    transfer_check_job,
    transfer_submit,
    transfer_submit_job,
)

__all__ = [
    "ACCEPT_MTN",
    "KEEP",
    "SUBMISSION_OUTCOMES",
    "Applied",
    "Resolution",
    "ResolutionRefused",
    "ApplyResult",
    "Transition",
    "_client_local",
    "callback_url_for",
    "funds_on_final",
    "funds_reserve",
    "in_request_lease",
    "lock_transfer",
    "refund_create",
    "refund_create_and_submit",
    "transfer_account",
    "transfer_apply_mtn_status",
    "transfer_create",
    "transfer_create_and_submit",
    "transfer_client",
    "transfer_fetch_mtn_status",
    "transfer_flag_for_review",
    "transfer_mismatch",
    "transfer_check_job",
    "transfer_poll",
    "transfer_poll_job",
    "transfer_recheck",
    "transfer_resolve",
    "transfer_submit",
    "transfer_submit_job",
    "transfer_transition",
    "uses_platform_money",
]
