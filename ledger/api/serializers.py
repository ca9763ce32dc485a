# Response shapes of the balance endpoints, for the OpenAPI document only: the views build
# their answers with ``ledger.api.representation``; these serializers only describe them.
# Their docstrings are the document's descriptions, written for merchants.

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gateway.money import SUPPORTED_CURRENCIES
from ledger.models import STATEMENT_TYPES, SourceObject

# The statement's transaction types, as the OpenAPI document names its enum.
STATEMENT_TYPE_VALUES = [choice.value for choice in STATEMENT_TYPES]
SOURCE_OBJECT_VALUES = [choice.value for choice in SourceObject]

_SIGNED_AMOUNT = (
    "A signed decimal string with exactly the currency's decimals, e.g. `-500` or `12.50`."
)


class BalanceSerializer(serializers.Serializer[Any]):
    """What the gateway holds for you in one currency."""

    currency = serializers.ChoiceField(choices=list(SUPPORTED_CURRENCIES))
    available = serializers.CharField(
        help_text="What the tenant can pay out or refund now; never negative."
    )
    reserved = serializers.CharField(help_text="What payouts and refunds still in flight hold.")


class BalanceListSerializer(serializers.Serializer[Any]):
    balances = BalanceSerializer(many=True)


class SourceSerializer(serializers.Serializer[Any]):
    """The object that made the transaction."""

    object = serializers.ChoiceField(choices=SOURCE_OBJECT_VALUES)
    id = serializers.UUIDField()


class BalanceTransactionSerializer(serializers.Serializer[Any]):
    """One line of the statement: a movement of the available balance."""

    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=STATEMENT_TYPE_VALUES)
    currency = serializers.ChoiceField(choices=list(SUPPORTED_CURRENCIES))
    amount = serializers.CharField(help_text=_SIGNED_AMOUNT)
    fee = serializers.CharField(help_text="The collection fee kept by the gateway (payments).")
    net = serializers.CharField(
        help_text="`amount - fee`: what the transaction did to the available balance."
    )
    # A field named like DRF's Field.source attribute; the serializer metaclass keeps them apart.
    source = SourceSerializer()  # type: ignore[assignment]
    created_at = serializers.DateTimeField()


class BalanceTransactionListSerializer(serializers.Serializer[Any]):
    results = BalanceTransactionSerializer(many=True)
    next = serializers.URLField(allow_null=True)
