"""The states a generation moves through: shared by the jobs that move through them and by the
ledger, which counts a running job's estimate against the budgets until it is billed."""

from django.db import models


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    SUBMITTED = "submitted", "Submitted"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"
    # A create whose answer was lost, on a provider that cannot be asked about it: it may have been
    # made (and billed) there. Counted as "possibly billed" until an admin confirms or voids it.
    UNKNOWN = "unknown", "Unknown"


IN_FLIGHT = [Status.SUBMITTED, Status.IN_PROGRESS]
ACTIVE = [Status.QUEUED, Status.SUBMITTING, Status.SUBMITTED, Status.IN_PROGRESS]
TERMINAL = [Status.COMPLETED, Status.FAILED, Status.TIMED_OUT, Status.CANCELLED, Status.UNKNOWN]
