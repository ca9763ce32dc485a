from django.db import models


class BaselineRow(models.Model):
    name = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
