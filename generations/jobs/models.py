"""Generations: one video job each, its timeline, the pump's lease, and how a creator wants videos routed."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Self

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import DecimalField, OuterRef, Q, Subquery
from django.utils import timezone

from generations.billing.models import CostEntry, CostKind
from generations.providers.models import Backend
from generations.states import ACTIVE, IN_FLIGHT, TERMINAL, Status
from sora_studio import queue


class Policy(models.TextChoices):
    """How the router picks a backend when the creator has not pinned one."""

    COST = "cost", "Cost: the cheapest quote"
    STABILITY = "stability", "Stability: the official tier first"
    CHARACTER = "character", "Character: where the characters are natively bound"


# What a generation records when the creator chose the backend: no policy was asked.
PINNED = "pinned"


class GenerationQuerySet(models.QuerySet):
    def for_user(self, user):
        """What `user` may see: their own jobs (staff: everyone's), without deleted ones."""
        visible = self.filter(deleted_at__isnull=True)
        return visible if user.is_staff else visible.filter(owner=user)

    def active(self):
        return self.filter(status__in=ACTIVE)

    def in_flight(self):
        """Holding one of the backend's concurrency slots: being submitted or running there."""
        return self.filter(status__in=[Status.SUBMITTING, *IN_FLIGHT])

    def unleased(self, now):
        """Held by nobody at `now`: never leased, or the lease ran out (its holder died or gave up)."""
        return self.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))

    def with_card_data(self) -> Self:
        """What a card shows, in a constant number of queries: backend, characters, and the ledger.

        The ledger holds at most one entry of each kind per generation (a database constraint), so
        each amount is a one-row subquery rather than a join that would multiply rows.
        """

        def amount(kind: str) -> Subquery:
            entries = CostEntry.objects.filter(generation=OuterRef("pk"), kind=kind).order_by().values("amount")[:1]
            return Subquery(entries, output_field=DecimalField(max_digits=14, decimal_places=6))

        return (
            self.select_related("backend", "owner")
            .prefetch_related("characters")
            .annotate(
                charge_amount=amount(CostKind.CHARGE),
                refund_amount=amount(CostKind.REFUND),
                estimate_amount=amount(CostKind.ESTIMATE),
            )
        )


def _asset_path(instance, filename, kind):
    return f"generations/{instance.owner_id}/{instance.uuid}/{kind}{filename[filename.rfind('.') :]}"


def upload_video(instance, filename):
    return _asset_path(instance, filename, "video")


def upload_thumbnail(instance, filename):
    return _asset_path(instance, filename, "thumbnail")


def upload_image(instance, filename):
    generation = instance.generation
    return f"generations/{generation.owner_id}/{generation.uuid}/{instance.role}{filename[filename.rfind('.') :]}"


class Generation(models.Model):
    """One video job, from the form to the stored MP4. Every state change is compare-and-set."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generations")
    scene = models.ForeignKey(
        "generations.Scene", null=True, blank=True, on_delete=models.SET_NULL, related_name="takes"
    )
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="generations")
    characters = models.ManyToManyField("characters.Character", blank=True, related_name="generations")
    remix_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="remixes")

    prompt = models.TextField(max_length=32000, help_text="As the creator wrote it, with @handles.")
    prompt_sent = models.TextField(blank=True, help_text="As sent to the backend.")
    characters_sent = models.JSONField(default=list, blank=True)
    # How each mentioned character reached the backend ({"mossy": "its id char_… and its name"}): native
    # ids or reference images, whichever the protocol takes. Shown on the page, written to the export.
    characters_travel = models.JSONField(default=dict, blank=True)
    model = models.CharField(max_length=80)
    seconds = models.PositiveIntegerField()
    size = models.CharField(max_length=20)
    # The router's decision: under which policy, among which candidates ({"backend", "quote"} or
    # {"backend", "refused"}), and the sentence the creator reads.
    routing_policy = models.CharField(max_length=20, blank=True)
    routing_candidates = models.JSONField(default=list, blank=True)
    routing_reason = models.CharField(max_length=1000, blank=True)
    # Sent without its characters: no backend that could carry them was up, and its series said
    # "degrade" rather than "wait". Flagged on the card.
    degraded = models.BooleanField(default=False)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    remote_id = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=64, unique=True, default="")
    # The form's one-time token: a double-click or a re-sent form finds this job instead of a twin.
    client_token = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Submit attempts.")
    poll_errors = models.PositiveIntegerField(default=0, help_text="Consecutive failed polls.")
    download_errors = models.PositiveIntegerField(
        default=0, help_text="Failed tries to fetch the finished video (retried on their own short schedule)."
    )
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # The provider was asked to call back when the job ends: it is polled WEBHOOK_POLL_FACTOR times less often.
    webhook = models.BooleanField(default=False, help_text="A completion callback was asked for.")
    lease_until = models.DateTimeField(null=True, blank=True)
    remote_video_url = models.URLField(max_length=2000, blank=True)
    error_code = models.CharField(max_length=80, blank=True)
    error_message = models.TextField(blank=True)

    video = models.FileField(upload_to=upload_video, blank=True)
    thumbnail = models.FileField(upload_to=upload_thumbnail, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Deleting hides the job and removes its files; the row stays so the ledger keeps its meaning.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["owner", "-created_at"]), models.Index(fields=["status", "next_poll_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "client_token"], condition=~Q(client_token=""), name="one_generation_per_client_token"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.prompt[:40]}"

    def save(self, *args, **kwargs):
        if not self.idempotency_key:
            self.idempotency_key = f"sora-studio-{self.uuid.hex}"
        super().save(*args, **kwargs)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def remixes_natively(self) -> bool:
        """A remix of this video goes to its provider's remix endpoint; otherwise it starts a new job."""
        return self.backend.enabled and self.remixable_on(self.backend)

    def remixable_on(self, backend: Backend) -> bool:
        """`backend` made this video, still knows it, and has a remix endpoint.

        Without `remixes_natively`'s "enabled": a remix queued before an admin disabled the backend
        still goes out as the remix it was started as.
        """
        return (
            self.status == Status.COMPLETED
            and bool(self.remote_id)
            and self.backend_id == backend.pk
            and backend.supports_remix
        )

    @property
    def image_roles(self) -> tuple[str, ...]:
        """The images this job asked for ("start", "end"): where it may be sent depends on them."""
        return tuple(sorted((image.role for image in self.images.all()), key=ImageRole.values.index))

    @property
    def deadline(self):
        """When the job ends timed out if it has not finished: its backend's timeout after it was made."""
        return self.created_at + timedelta(seconds=self.backend.timeout)

    def transition(self, old: str | list[str], new: str, *, note: str | None = None, **fields) -> bool:
        """Compare-and-set: move to `new` only if still in `old`. True if this call won.

        The timeline's entry says `note`, else the error message the move sets (if any)."""
        olds = [old] if isinstance(old, str) else list(old)
        now = timezone.now()
        fields.setdefault("updated_at", now)
        if note is None:
            note = fields.get("error_message", "")
        won = _move(self.pk, olds, {"status": new, **fields}, now, note[:300])
        if won:
            if new in TERMINAL and self.scene_id:
                # A series may wait on this take (storyboards sit above jobs: they hear of it by a task).
                queue.take_ended_on_commit(self.pk)
            self.status = new
            for name, value in fields.items():
                setattr(self, name, value)
        return won

    def fail(self, code: str, message: str, *, status: str = Status.FAILED) -> bool:
        """End the job with a reason and refund what was charged up front. Safe to call twice."""
        with transaction.atomic():
            won = self.transition(
                ACTIVE, status, error_code=code[:80], error_message=message, next_poll_at=None, lease_until=None
            )
            if won:
                CostEntry.objects.refund_if_unbilled(self)
        return won

    def time_out(self) -> bool:
        """End a job past its deadline as timed out, refunded where billed. Safe to call twice."""
        return self.fail("timeout", f"No result after {_duration(self.backend.timeout)}.", status=Status.TIMED_OUT)

    @property
    def refunded(self) -> bool:
        """The ledger gave this job's charge back (read from `with_card_data` where it was used)."""
        if hasattr(self, "refund_amount"):
            return self.refund_amount is not None
        return self.cost_entries.filter(kind=CostKind.REFUND).exists()

    @property
    def can_check_again(self) -> bool:
        """A timed-out job the provider accepted may be asked about once more, unless it was refunded:
        the ledger holds one charge and one refund per job, so a refunded job could never be charged
        again if it turned out finished (see lifecycle.check_again)."""
        return self.status == Status.TIMED_OUT and bool(self.remote_id) and not self.refunded

    def charged(self) -> Decimal:
        return self.cost_entries.net()


# Every state change of every job goes through transition(): its UPDATE and its timeline's INSERT are written
# once per shape here rather than compiled by the ORM on each call, which cost more CPU than the statements'
# own work (a job makes three or four; `make bench` measures the pipeline). Values are prepared by each
# field, as the ORM prepares them; a move that sets a relation or an expression goes through the ORM.
#
# On PostgreSQL the two are one statement (the INSERT takes its row from the UPDATE's RETURNING): one round trip,
# and atomic by itself, so a state change needs no transaction of its own. Elsewhere they are two statements in
# one transaction (SQLite has no UPDATE inside WITH; it is in-process, so the second statement costs no round trip).


def _move(pk: int, olds: list[str], values: dict, at, note: str) -> bool:
    """Compare-and-set the job's `values` (status among them) if its status is one of `olds`, and add the new
    status to its timeline, at once. True if it was in one of `olds`."""
    by_hand = not any(
        isinstance(value, models.Model) or hasattr(value, "resolve_expression") for value in values.values()
    )
    if by_hand and connection.vendor == "postgresql":
        sql, fields = _update_statement(connection.vendor, tuple(values), len(olds), with_event=True)
        with connection.cursor() as cursor:
            cursor.execute(sql, [*_prepared(fields, values), pk, *olds, values["status"], as_db_datetime(at), note])
            return cursor.rowcount == 1
    with transaction.atomic(savepoint=False):
        if by_hand:
            won = _compare_and_set(pk, olds, values)
        else:
            won = Generation.objects.filter(pk=pk, status__in=olds).update(**values) == 1
        if won:
            add_event(pk, values["status"], at, note)
    return won


def _compare_and_set(pk: int, olds: list[str], values: dict) -> bool:
    """UPDATE the job's `values` (status among them) if its status is one of `olds`; True if it was."""
    sql, fields = _update_statement(connection.vendor, tuple(values), len(olds))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*_prepared(fields, values), pk, *olds])
        return cursor.rowcount == 1


def _prepared(fields, values: dict) -> list:
    return [field.get_db_prep_save(value, connection) for field, value in zip(fields, values.values(), strict=True)]


def add_event(generation_id: int, status: str, at, note: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_event_statement(connection.vendor), [generation_id, status, as_db_datetime(at), note])


def as_db_datetime(moment):
    """A datetime as this database takes it in a hand-written statement (naive UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(moment)


@functools.cache
def _update_statement(vendor: str, names: tuple[str, ...], olds: int, with_event: bool = False) -> tuple[str, list]:
    quote = connection.ops.quote_name
    meta = Generation._meta
    fields = [meta.get_field(name) for name in names]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    where = f"{quote(meta.pk.column)} = %s AND {quote('status')} IN ({', '.join(['%s'] * olds)})"
    update = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {where}"
    if not with_event:
        return update, fields
    moved = quote("moved")
    sql = (
        f"WITH {moved} AS ({update} RETURNING {quote(meta.pk.column)}) INSERT INTO {event_table()} "
        f"SELECT {moved}.{quote(meta.pk.column)}, %s, %s, %s FROM {moved}"
    )
    return sql, fields


@functools.cache
def _event_statement(vendor: str) -> str:
    return f"INSERT INTO {event_table()} VALUES (%s, %s, %s, %s)"


def event_table() -> str:
    """The timeline's table with the columns a state change writes: its job, the new status, when, a note."""
    quote = connection.ops.quote_name
    meta = GenerationEvent._meta
    columns = ", ".join(quote(meta.get_field(name).column) for name in ("generation", "status", "at", "note"))
    return f"{quote(meta.db_table)} ({columns})"


def _duration(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


class Attempt(models.Model):
    """A try of a generation on one backend that ended in a confirmed failure, after which the job moved
    to another backend (fallback). The job's current try is the generation itself; these are the earlier ones."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="earlier_attempts")
    number = models.PositiveSmallIntegerField()
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="+")
    remote_id = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=80, blank=True)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["generation", "number"]
        constraints = [models.UniqueConstraint(fields=["generation", "number"], name="one_attempt_per_number")]

    def __str__(self) -> str:
        return f"#{self.generation_id} try {self.number} on {self.backend_id}: {self.error_code}"


class ImageRole(models.TextChoices):
    START = "start", "Start image"
    END = "end", "End image"


class ImageSource(models.TextChoices):
    UPLOAD = "upload", "Uploaded"
    STILL = "still", "A character's still"
    LAST_FRAME = "last_frame", "The last frame of a video"


class GenerationImage(models.Model):
    """A generation's start (first-frame) or end (last-frame) image, as it was sent: checked, and cropped to the
    video's size (generations.jobs.images). Kept with the video, shown beside it, listed in exports."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="images")
    role = models.CharField(max_length=10, choices=ImageRole.choices)
    image = models.FileField(upload_to=upload_image)
    source = models.CharField(max_length=20, choices=ImageSource.choices)
    note = models.CharField(max_length=200, blank=True, help_text="Which upload, still or video it came from.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["generation", "-role"]  # start, then end
        constraints = [models.UniqueConstraint(fields=["generation", "role"], name="one_image_per_role")]

    def __str__(self) -> str:
        return f"#{self.generation_id} {self.role} image"


class GenerationEvent(models.Model):
    """The timeline of a job: one row per state it entered (written by the winning transition)."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=20, choices=Status.choices)
    at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["generation", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.generation_id} {self.status} at {self.at:%H:%M:%S}"


class CharacterFallback(models.TextChoices):
    """What a scene with characters does when no backend that can carry them is up."""

    WAIT = "wait", "Wait for a backend that can carry the characters"
    DEGRADE = "degrade", "Send it without the characters (flagged)"


class PumpLease(models.Model):
    """Who runs the pump now: one row per pump name, taken by compare-and-set, renewed each tick."""

    name = models.CharField(max_length=40, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name}: {self.holder or 'nobody'} until {self.expires_at:%H:%M:%S}"


class CreatorSettings(models.Model):
    """A creator's own defaults: the routing policy of a video whose series (if any) does not set one."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="creator_settings")
    routing_policy = models.CharField(max_length=20, choices=Policy.choices, default=Policy.COST)

    class Meta:
        verbose_name_plural = "creator settings"

    def __str__(self) -> str:
        return f"{self.user}: {self.routing_policy}"

    @classmethod
    def policy_for(cls, user) -> str:
        """`user`'s default routing policy (cost until they choose one)."""
        chosen = cls.objects.filter(user=user).values_list("routing_policy", flat=True).first()
        return chosen or Policy.COST
