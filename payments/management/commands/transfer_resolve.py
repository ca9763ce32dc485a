"""``manage.py transfer_resolve ID --accept-mtn|--keep --reason TEXT``: a person's decision
about a payment, payout or refund flagged for review (contract: When MTN disagrees)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.audit import Actor
from gateway.models import AuditEvent
from payments.models import TRANSFER_MODELS, MoneyTransfer
from payments.services import ACCEPT_MTN, KEEP, ResolutionRefused, transfer_resolve


class Command(BaseCommand):
    help = (
        "Resolve a payment, payout or refund flagged for review: --accept-mtn gives it MTN's "
        "final status and posts the ledger's correction; --keep keeps ours and clears the "
        "flag. Audited with the reason. Prints the outcome as JSON; a second resolve changes "
        "nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="The payment's, payout's or refund's id.")
        decision = parser.add_mutually_exclusive_group(required=True)
        decision.add_argument("--accept-mtn", action="store_true")
        decision.add_argument("--keep", action="store_true")
        parser.add_argument("--reason", required=True, help="Why: kept in the audit trail.")

    def handle(self, *args: Any, **options: Any) -> None:
        transfer = _find(options["id"])
        try:
            result = transfer_resolve(
                transfer=transfer,
                decision=ACCEPT_MTN if options["accept_mtn"] else KEEP,
                reason=options["reason"],
                actor=Actor(AuditEvent.ActorType.SYSTEM, "manage.py transfer_resolve"),
            )
        except ResolutionRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            json.dumps(
                {
                    "id": str(result.transfer.pk),
                    "object": result.transfer.kind,
                    "decision": ACCEPT_MTN if options["accept_mtn"] else KEEP,
                    "changed": result.changed,
                    "previous_status": result.previous_status,
                    "status": result.transfer.status,
                    "needs_review": result.transfer.needs_review,
                }
            )
        )


def _find(raw_id: str) -> MoneyTransfer:
    try:
        transfer_id = uuid.UUID(raw_id)
    except ValueError as exc:
        raise CommandError(f"{raw_id!r} is not an id.") from exc
    for model in TRANSFER_MODELS.values():
        found = model.objects.select_related("tenant").filter(pk=transfer_id).first()
        if found is not None:
            return found
    raise CommandError(f"No payment, payout or refund has the id {raw_id}.")
