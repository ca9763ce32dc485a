"""The two baselines the gateway's figures are divided by (same server, same database)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.baseline.models import BaselineRow


class _Bare(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


class ConstantView(_Bare):
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class RowSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    amount = serializers.DecimalField(max_digits=20, decimal_places=2)


class InsertView(_Bare):
    def post(self, request: Request) -> Response:
        serializer = RowSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = BaselineRow.objects.create(**serializer.validated_data)
        return Response({"id": row.pk}, status=201)
