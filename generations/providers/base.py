"""What every protocol package shares: the error, the normalised job, and the spec a protocol declares.

Every failure surfaces as `ProviderError`, which says whether trying again later can help
(`transient`), how long the provider asked us to wait (`retry_after`), and, for creates, whether
the request may have reached the provider (`maybe_sent`): a create whose answer was lost is never
blindly re-sent, because that could start (and bill) the same video twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        code: str = "provider_error",
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


# Normalised job states. task_api providers use many synonyms for the same few states.
QUEUED, RUNNING, COMPLETED, FAILED = "queued", "in_progress", "completed", "failed"


class KeepsNoCharacters:
    """For a protocol whose characters travel as reference images: there is nothing to register or
    extract on the provider (the registry never asks; this answers anyone who does)."""

    def create_character(self, *, name: str, description: str, clip, clip_url: str) -> str:
        raise ProviderError(self._keeps_none(), code="unsupported")

    def extract_character(self, task_id: str, name: str) -> str:
        raise ProviderError(self._keeps_none(), code="unsupported")

    def _keeps_none(self) -> str:
        return f"{self.http.backend.name} keeps no characters: they travel as reference images."


@dataclass
class RemoteJob:
    id: str
    status: str
    progress: int = 0
    error_code: str = ""
    error_message: str = ""
    seconds: str = ""
    video_url: str = ""
    thumbnail_url: str = ""
    poll_after: float | None = None  # seconds, from the provider's hint
    raw: dict = field(default_factory=dict, repr=False)
    # The create asked the provider to call back when the job ends (generations.providers.webhooks).
    webhook: bool = False


@dataclass(frozen=True)
class LostCreate:
    """A create whose answer was lost, as a provider's job list can be searched for it: the same prompt,
    model, seconds and size, made within the window (unix seconds) the create was in flight."""

    prompt: str
    model: str
    seconds: int
    size: str
    created_after: float
    created_before: float

    def in_window(self, created_at: float) -> bool:
        return self.created_after <= created_at <= self.created_before


@dataclass(frozen=True)
class Mention:
    """A character as one backend knows it, for writing a prompt that mentions it."""

    name: str
    remote_id: str


@dataclass(frozen=True)
class ReferenceImage:
    """An image sent with a video: a still that carries a character, or the video's start or end frame."""

    name: str
    content: bytes
    content_type: str = "image/png"


NATIVE_ID = "native id"  # the provider registers the character and the prompt refers to its id
REFERENCE_IMAGES = "reference images"  # the character's stills go along with every video


@dataclass(frozen=True)
class ProtocolSpec:
    """All a protocol is, apart from its client: what it offers and costs by default, what it can
    do, and how a character travels to it. One per protocol package, listed in the registry."""

    name: str  # the `protocol` value stored on a Backend and given to `add_backend --protocol`
    label: str
    client: str  # dotted path of the client class, imported when a backend first talks to the provider
    default_tier: str  # "official" or "aggregator"
    # model -> {"seconds": [...], "sizes": [...]}: what a new backend offers until an admin edits it
    default_offers: dict
    # price rows installed on a new backend: {"model", "size", "unit", "amount"}
    default_prices: tuple[dict, ...]
    characters: bool  # can hold characters
    extract: bool  # can make a character from one of its own tasks
    remix: bool  # has a native remix of a finished video
    deletes_remotely: bool  # deleting a video here also deletes it on the provider
    max_characters: int | None  # per video; None = no limit of the protocol's own
    # How a mentioned character is written into the prompt this protocol receives...
    write_mention: Callable[[Mention], str]
    # ...and whether the characters' remote ids also go along in the request.
    sends_character_ids: bool
    # The provider deduplicates creates by Idempotency-Key (so a create whose answer was lost may be re-sent).
    idempotency_keys: bool = False
    # The provider lists recent jobs, so a create whose answer was lost can be looked for (find_recent).
    # Without a list (or a key it deduplicates by) such a job may exist unseen: it ends "unknown", possibly billed.
    lists_jobs: bool = False
    # How a character reaches this protocol: NATIVE_ID or REFERENCE_IMAGES (and how many images at most).
    travel: str = NATIVE_ID
    max_reference_images: int = 0
    # The provider fetches the clip from a link (rather than taking the file): an uploaded clip is offered
    # as a signed link to this studio, which a provider can reach only if SITE_URL is public.
    clip_by_url: bool = False
    # The clip length (shortest, longest seconds) the provider registers a character from; longer ones are cut.
    clip_seconds: tuple[int, int] | None = None
    # Start and end images (a video's first and last frame) the protocol takes: "start", "end". Where a model
    # says otherwise in its offer ("images": [...], e.g. a Runway model that takes a last frame too), the offer wins.
    images: tuple[str, ...] = ()
    # Images travel as the model's own arguments (fal, Replicate, a task API's extra fields): a model takes a start
    # image where its offer's "arguments" name "{start_image}" (or "{image}"), an end image where they name
    # "{end_image}" (generations.providers.offers). `images` is not used then.
    image_arguments: bool = False
    # The provider calls back when a job ends, when asked at create time: the client then has
    # `verify_webhook(headers, body) -> generations.providers.webhooks.Delivery` (see that module).
    webhooks: bool = False
    # Where the built-in simulator speaks this protocol, under /simulator/, and the seeded backend's name.
    simulator_path: str = ""
    simulator_backend: str = ""

    def default_price_rows(self) -> list[dict]:
        return [dict(row, amount=Decimal(row["amount"])) for row in self.default_prices]
