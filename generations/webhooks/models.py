from datetime import timedelta

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from generations.providers.models import Backend
from generations.providers.webhooks import TOLERANCE_SECONDS


class WebhookDeliveryQuerySet(models.QuerySet):
    def first_time(self, backend: Backend, delivery_id: str) -> bool:
        """Remember a verified delivery; False if it was seen already (a replay).

        Kept in a table rather than the cache so every web process agrees. A delivery older than the
        timestamp window is refused before it gets here, so rows older than that are forgotten.
        """
        now = timezone.now()
        self.filter(received_at__lt=now - timedelta(seconds=2 * TOLERANCE_SECONDS)).delete()
        try:
            with transaction.atomic():
                self.create(backend=backend, delivery_id=delivery_id[:200], received_at=now)
        except IntegrityError:
            return False
        return True


class WebhookDelivery(models.Model):
    """A completion callback already acted on, by its provider's delivery id: a second one is a replay."""

    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="+")
    delivery_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(db_index=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["backend", "delivery_id"], name="one_webhook_delivery_per_id"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} ({self.received_at:%Y-%m-%d %H:%M:%S})"
