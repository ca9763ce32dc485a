"""How drf-spectacular documents the credentials: ``Authorization: Bearer <API key>`` alone,
or ``X-API-Key`` + ``X-Tenant-ID`` together (two ways, either one opens the API)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = ["Bearer", "ApiKey", "TenantId"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        # OR of two requirements: the bearer key alone, or both headers together.
        return [{"Bearer": []}, {"ApiKey": [], "TenantId": []}]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "`Authorization: Bearer <API key>`: the key alone, which names its tenant "
                    "(what a generated client's one credential sends). With an `X-Tenant-ID` "
                    "that is not the key's tenant it is 401."
                ),
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "The tenant's API key (shown once when it was issued), sent "
                "with `X-Tenant-ID`.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Tenant-ID",
                "description": "The tenant's slug (e.g. `demo`), not its id or name.",
            },
        ]
