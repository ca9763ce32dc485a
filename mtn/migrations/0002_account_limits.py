# Per-account MTN call limits (issue 15): null = the MTN_MAX_IN_FLIGHT and MTN_RATE_LIMIT settings.

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mtn", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="mtnaccount",
            name="max_in_flight",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Calls at once to MTN through this account. Empty: MTN_MAX_IN_FLIGHT.",
                null=True,
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
        migrations.AddField(
            model_name="mtnaccount",
            name="rate_limit",
            field=models.FloatField(
                blank=True,
                help_text="Calls per second to MTN through this account. Empty: MTN_RATE_LIMIT.",
                null=True,
                validators=[django.core.validators.MinValueValidator(0.01)],
            ),
        ),
        migrations.AddConstraint(
            model_name="mtnaccount",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("max_in_flight__isnull", True), ("max_in_flight__gte", 1), _connector="OR"
                ),
                name="mtn_account_max_in_flight_positive",
            ),
        ),
        migrations.AddConstraint(
            model_name="mtnaccount",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("rate_limit__isnull", True), ("rate_limit__gt", 0), _connector="OR"
                ),
                name="mtn_account_rate_limit_positive",
            ),
        ),
    ]
