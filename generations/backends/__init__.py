"""Provider clients, one module per protocol, behind one small interface.

Every failure surfaces as `ProviderError`, which says whether trying again later can help
(`transient`), how long the provider asked us to wait (`retry_after`), and, for creates, whether
the request may have reached the provider (`maybe_sent`): a create whose answer was lost is never
blindly re-sent, because that could start (and bill) the same video twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from generations.models import Protocol


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


def client_for(backend):
    from generations.backends.openai_videos import OpenAIVideosClient
    from generations.backends.task_api import TaskAPIClient

    cls = {Protocol.OPENAI_VIDEOS: OpenAIVideosClient, Protocol.TASK_API: TaskAPIClient}[backend.protocol]
    return cls(backend)
