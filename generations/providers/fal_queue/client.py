"""fal's queue API: submit to a model app, poll its status, read its result, fetch the video from fal's CDN.

# Reference: https://fal.ai/docs/documentation/model-apis/inference/queue
# and the official SDK, fal-client: fal_client/client.py (SyncClient.submit, SyncRequestHandle, _parse_status)

The status, result and cancel URLs use only the `owner/alias` of the app id (the endpoint path is dropped),
so the remote id kept for a job is `owner/alias/request_id`. A model error (a content-policy refusal, a
failed render) shows as COMPLETED, then a 422 `{"detail": [{loc, msg, type}]}` on the result URL.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from typing import IO

import requests

from generations.providers.base import (
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    KeepsNoCharacters,
    LostCreate,
    ProviderError,
    ReferenceImage,
    RemoteJob,
)
from generations.providers.fal_queue import webhooks
from generations.providers.http import HTTPClient
from generations.providers.offers import arguments_for, fill_arguments
from generations.providers.webhooks import Delivery, callback_url

# fal-client treats these first segments as a namespace in front of owner/alias.
APP_NAMESPACES = ("workflows", "comfy")
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_PERCENT = re.compile(r"(\d{1,3})(?:\.\d+)?\s*%")
# An app whose offer has no "arguments" map gets the prompt alone: every fal video app takes one.
DEFAULT_ARGUMENTS = {"prompt": "{prompt}"}


def key_auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Key {key}"}


def app_root(app_id: str) -> str:
    """`owner/alias` of an app id (`namespace/owner/alias` for workflows): where its requests live."""
    parts = [part for part in app_id.strip().strip("/").split("/") if part]
    size = 3 if parts and parts[0] in APP_NAMESPACES else 2
    if len(parts) < size:
        raise ProviderError(f"{app_id[:80]!r} is not a fal app id (owner/app[/endpoint]).", code="invalid_model")
    return "/".join(parts[:size])


def argument_values(
    prompt: str,
    seconds,
    size: str,
    images: Sequence[ReferenceImage],
    start_image: ReferenceImage | None = None,
    end_image: ReferenceImage | None = None,
) -> dict:
    """What an offer's "{placeholders}" stand for, for one video. Seconds are a string ("5"), as Kling takes them.
    The first frame ("{start_image}", or "{image}") is the creator's start image, else the first character's still."""
    try:
        width, height = (int(part) for part in size.lower().split("x"))
        divisor = math.gcd(width, height)
        ratio = f"{width // divisor}:{height // divisor}"
    except (ValueError, ZeroDivisionError):
        raise ProviderError(f"{size[:20]!r} is not a WIDTHxHEIGHT size.", code="invalid_size") from None
    first = start_image or (images[0] if images else None)
    return {
        "prompt": prompt,
        "seconds": str(int(seconds)),
        "size": size,
        "width": width,
        "height": height,
        "ratio": ratio,
        "aspect_ratio": ratio,
        "image": data_uri(first) if first is not None else None,
        "start_image": data_uri(first) if first is not None else None,
        "end_image": data_uri(end_image) if end_image is not None else None,
    }


def data_uri(image: ReferenceImage) -> str:
    """fal apps take an image as a URL; a base64 data URI is one, and needs no upload first."""
    return f"data:{image.content_type};base64,{base64.b64encode(image.content).decode('ascii')}"


def describe_detail(detail) -> tuple[str, str]:
    """(message, code) from fal's `detail`: a string (request errors) or a list of {loc, msg, type} (model errors)."""
    if isinstance(detail, str):
        return detail[:500], ""
    if not isinstance(detail, list) or not detail or not isinstance(detail[0], dict):
        return "", ""
    first = detail[0]
    message = str(first.get("msg") or "")
    where = (
        [str(part) for part in first.get("loc") or [] if part != "body"] if isinstance(first.get("loc"), list) else []
    )
    categories = [str(c) for c in first.get("categories") or []] if isinstance(first.get("categories"), list) else []
    notes = ([f"in {'.'.join(where)}"] if where else []) + ([f"flagged: {', '.join(categories)}"] if categories else [])
    if notes:
        message = f"{message.rstrip('.')} ({'; '.join(notes)})."
    if len(detail) > 1:
        message += f" And {len(detail) - 1} more problem(s)."
    return message[:500], str(first.get("type") or "")[:80]


class FalHTTPClient(HTTPClient):
    """HTTPClient that reads fal's error bodies: `{"detail": …, "error_type": …}` or `{"status": …}` (cancel)."""

    def error_from(self, response: requests.Response, *, is_create: bool) -> ProviderError:
        error = super().error_from(response, is_create=is_create)
        try:
            data = response.json()
        except ValueError:
            data = None
        message, code = describe_detail(data.get("detail")) if isinstance(data, dict) else ("", "")
        if isinstance(data, dict):
            code = code or str(data.get("error_type") or data.get("status") or "")[:80]
        code = code or response.headers.get("X-Fal-Error-Type", "")[:80]
        if response.status_code in (401, 403):
            message = (
                f"{self.backend.name} refused the API key (HTTP {response.status_code}"
                f"{': ' + message if message else ''}). Check the backend's key."
            )
        return ProviderError(
            message or error.message,
            code=code or error.code,
            status=error.status,
            transient=error.transient,
            retry_after=error.retry_after,
            maybe_sent=error.maybe_sent,
        )


class FalQueueClient(KeepsNoCharacters):
    protocol = "fal_queue"

    def __init__(self, backend):
        self.backend = backend
        self.http = FalHTTPClient(backend, auth=key_auth)

    def create(
        self,
        *,
        prompt: str,
        model: str,
        seconds,
        size: str,
        characters: list[str],
        idempotency_key: str,
        images: Sequence[ReferenceImage] = (),
        start_image: ReferenceImage | None = None,
        end_image: ReferenceImage | None = None,
    ) -> RemoteJob:
        # The offer maps the request onto the app's own arguments; an image goes only where they name it
        # ("{start_image}", "{end_image}"). fal documents no idempotency key, so none is sent (a lost answer is
        # never re-sent blindly).
        offer = self.backend.offer().get(model) or {}
        arguments = arguments_for(offer, DEFAULT_ARGUMENTS, end_image=end_image is not None)
        body = fill_arguments(arguments, argument_values(prompt, seconds, size, images, start_image, end_image))
        # Called back when the request ends, where this site is reachable (polling goes on, slower, anyway).
        webhook = callback_url(self.backend)
        params = webhooks.submit_params(webhook) if webhook else None
        data = self.http.json("POST", model.strip().strip("/"), json=body, params=params, is_create=True)
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            raise ProviderError(
                f"{self.backend.name} did not return a request id.",
                code="invalid_response",
                transient=True,
                maybe_sent=True,
            )
        return RemoteJob(id=f"{app_root(model)}/{request_id}", status=QUEUED, raw=data, webhook=bool(webhook))

    def verify_webhook(self, headers, body: bytes) -> Delivery:
        return webhooks.verify(self, headers, body)

    def retrieve(self, remote_id: str) -> RemoteJob:
        root, request_id = _split(remote_id)
        data = self.http.json("GET", f"{root}/requests/{request_id}/status", params={"logs": "1"})
        word = data.get("status")
        if word == "IN_QUEUE":
            return RemoteJob(id=remote_id, status=QUEUED, raw=data)
        if word == "IN_PROGRESS":
            return RemoteJob(id=remote_id, status=RUNNING, progress=_progress(data.get("logs")), raw=data)
        if word == "COMPLETED":
            return self._result(remote_id, root, request_id, data)
        raise ProviderError(
            f"{self.backend.name} reported an unknown request status {str(word)[:40]!r}.",
            code="invalid_response",
            transient=True,
        )

    def _result(self, remote_id: str, root: str, request_id: str, status: dict) -> RemoteJob:
        try:
            output = self.http.json("GET", f"{root}/requests/{request_id}")
        except ProviderError as exc:
            if exc.status == 422:
                # The model's own refusal or failure: final for this prompt, with the reason fal gave.
                return _failed(remote_id, exc.code or "model_error", exc.message, status)
            if isinstance(status.get("error"), str) and status["error"] and not exc.rate_limited:
                return _failed(remote_id, str(status.get("error_type") or "request_error"), status["error"], status)
            raise
        video = output.get("video")
        url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _failed(
                remote_id,
                "no_video",
                f"{self.backend.name} finished the request but its result has no "
                "video URL (is this model app a video app?).",
                output,
            )
        return RemoteJob(id=remote_id, status=COMPLETED, progress=100, video_url=url, raw=output)

    def download(self, job: RemoteJob, variant: str, dest: IO[bytes]) -> int:
        return self.http.download_output(job, variant, dest)  # the video alone, from the provider's CDN

    def remix(self, remote_id: str, prompt: str, idempotency_key: str) -> RemoteJob:
        raise ProviderError("fal's queue API has no remix.", code="unsupported")

    def delete(self, remote_id: str) -> None:
        """Cancel the request (the queue API deletes nothing); a finished one needs no cancelling."""
        root, request_id = _split(remote_id)
        try:
            self.http.request("PUT", f"{root}/requests/{request_id}/cancel")
        except ProviderError as exc:
            if exc.code != "ALREADY_COMPLETED":
                raise

    def find_recent(self, lost: LostCreate) -> list[RemoteJob]:
        return []  # the queue API lists no requests to reconcile a lost submit against


def _split(remote_id: str) -> tuple[str, str]:
    root, _, request_id = remote_id.rpartition("/")
    if not root or not _REQUEST_ID.fullmatch(request_id):
        raise ProviderError(
            f"{remote_id[:80]!r} is not a fal request (owner/app/request_id).", code="invalid_remote_id"
        )
    return root, request_id


def _failed(remote_id: str, code: str, message: str, raw: dict) -> RemoteJob:
    return RemoteJob(id=remote_id, status=FAILED, error_code=code, error_message=message, raw=raw)


def _progress(logs) -> int:
    """fal reports no progress; an app that logs a percentage ("Generating video: 45%") gives one."""
    if not isinstance(logs, list):
        return 0
    for entry in reversed(logs):
        message = entry.get("message") if isinstance(entry, dict) else None
        match = _PERCENT.search(message) if isinstance(message, str) else None
        if match:
            return max(0, min(99, int(match.group(1))))
    return 0
