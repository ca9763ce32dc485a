from django.contrib.admin.apps import AdminConfig


class GatewayAdminConfig(AdminConfig):
    """Django's admin with the gateway's site (dashboard, two-factor sign-in) as default."""

    default_site = "shell.admin_site.GatewayAdminSite"
