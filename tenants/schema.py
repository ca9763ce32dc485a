"""How drf-spectacular documents ``X-API-Key`` + ``X-Tenant-ID`` (both required together)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = ["ApiKey", "TenantId"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "The tenant's API key (shown once when it was issued).",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Tenant-ID",
                "description": "The tenant's slug.",
            },
        ]
