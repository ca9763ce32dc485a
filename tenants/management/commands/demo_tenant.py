import json
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from gateway.audit import Actor
from tenants.models import Tenant
from tenants.services import api_key_create, tenant_create

DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = "For `make run`: create the demo tenant (or a fresh key for it) and print how to call."

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant, issued = tenant_create(slug=DEMO_SLUG, name="Demo Shop", actor=Actor.system())
        else:
            issued = api_key_create(tenant=tenant, actor=Actor.system(), name="make run")
        credentials = {
            "tenant": tenant.slug,
            "api_key": issued.raw_key,
            "webhook_secret": tenant.webhook_secret,
        }
        self.stdout.write(json.dumps(credentials))
        admin_password = self._ensure_admin()
        self.stdout.write(
            "\nTry it (the gateway listens on http://127.0.0.1:8000):\n"
            f"  export API_KEY={issued.raw_key} TENANT={tenant.slug}\n"
            "  curl -s -X POST http://127.0.0.1:8000/api/v1/payments \\\n"
            '    -H "X-API-Key: $API_KEY" -H "X-Tenant-ID: $TENANT" \\\n'
            '    -H "Idempotency-Key: order-$(date +%s%N)" \\\n'
            '    -H "Content-Type: application/json" \\\n'
            '    -d \'{"amount": "15.00", "currency": "EUR", "payer": "256772123456"}\'\n'
            "Swagger UI: http://127.0.0.1:8000/api/docs/  Admin: http://127.0.0.1:8000/admin/\n"
        )
        if admin_password:
            self.stdout.write(f"Admin login (created now, shown once): admin / {admin_password}\n")

    @staticmethod
    def _ensure_admin() -> str | None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return None
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser("admin", "admin@example.com", password)
        return password
