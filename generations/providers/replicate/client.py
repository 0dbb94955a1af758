"""Replicate's predictions API: one prediction per video, on the model the backend's offer names.

# Reference: https://replicate.com/docs/reference/http (predictions.create / get / cancel / list)
# and the official SDK, replicate-python 1.0: replicate/prediction.py, replicate/model.py, replicate/client.py
"""

from __future__ import annotations

import base64
import math
import re
from datetime import datetime
from typing import IO
from urllib.parse import quote

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
from generations.providers.http import HTTPClient
from generations.providers.offers import arguments_for, fill_arguments, image_roles_in
from generations.providers.replicate import webhooks
from generations.providers.webhooks import Delivery, callback_url

_STATUS = {"starting": QUEUED, "processing": RUNNING, "succeeded": COMPLETED, "failed": FAILED, "canceled": FAILED}
# The arguments of a model whose offer does not spell them out: what most Replicate video models take.
DEFAULT_ARGUMENTS = {"prompt": "{prompt}", "duration": "{seconds}"}
# Progress is only in the logs, as the tqdm lines models print (the SDK reads them the same way).
_PROGRESS = re.compile(r"^\s*(\d{1,3})%\s*\|.+?\|", re.MULTILINE)
# How Replicate and its models word a safety refusal (E005 is Replicate's code for "flagged as sensitive").
_FLAGGED = re.compile(r"flagged as sensitive|nsfw|\bE005\b|safety|moderation|content policy", re.IGNORECASE)
_MODEL = re.compile(r"^([A-Za-z0-9][\w.-]*)/([A-Za-z0-9][\w.-]*)$")


class ReplicateHTTP(HTTPClient):
    """HTTPClient reading Replicate's RFC 7807 problem details (`title`, `detail`) into the error."""

    def error_from(self, response: requests.Response, *, is_create: bool) -> ProviderError:
        error = super().error_from(response, is_create=is_create)
        title, detail = _problem(response)
        status = response.status_code
        if status in (401, 403):
            message = (
                f"{self.backend.name} refused the API token (HTTP {status}{': ' + detail if detail else ''}). "
                "Check the backend's key."
            )
            code = "unauthorized"
        elif status == 422:
            message, code = f"{self.backend.name} refused the input: {detail or title}", "invalid_input"
        elif status == 404:
            message, code = f"{self.backend.name}: {detail or title or 'not found'}", "not_found"
        elif title or detail:
            message, code = f"{self.backend.name}: {' — '.join(p for p in (title, detail) if p)}", error.code
        else:
            return error
        error.message, error.args, error.code = message[:500], (message[:500],), code
        return error


def _problem(response: requests.Response) -> tuple[str, str]:
    try:
        data = response.json()
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    # A 422's detail is a bullet list ("- input: prompt is required\n"): one line reads better.
    detail = " ".join(line.strip(" -") for line in str(data.get("detail") or "").splitlines() if line.strip(" -"))
    return str(data.get("title") or "")[:200], detail[:400]


def parse_prediction(data: dict) -> RemoteJob:
    """Validate a prediction strictly: an unknown status or a missing id is a bad answer."""
    prediction_id = data.get("id")
    status = _STATUS.get(data.get("status")) if isinstance(data.get("status"), str) else None
    if not isinstance(prediction_id, str) or not prediction_id or status is None:
        raise ProviderError(
            "The backend answered with an object that is not a prediction.", code="invalid_response", transient=True
        )
    video_url = _first_url(data.get("output"))
    if data["status"] == "succeeded" and not video_url:
        raise ProviderError(
            "The backend says the prediction succeeded but gave no video URL.", code="invalid_response", transient=True
        )
    error = str(data.get("error") or "")[:1000]
    code = ""
    if data["status"] == "canceled":
        code, error = "canceled", error or "The prediction was canceled on the provider."
    elif status == FAILED:
        code = "moderation_blocked" if _FLAGGED.search(error) else "prediction_failed"
    progress = [int(p) for p in _PROGRESS.findall(str(data.get("logs") or ""))]
    inputs = data.get("input") if isinstance(data.get("input"), dict) else {}
    duration = inputs.get("duration")
    return RemoteJob(
        id=prediction_id,
        status=status,
        progress=100 if status == COMPLETED else max(0, min(99, progress[-1])) if progress else 0,
        error_code=code,
        error_message=error,
        seconds=str(int(duration))
        if isinstance(duration, int | float)
        and not isinstance(duration, bool)
        and math.isfinite(duration)
        and duration > 0
        else "",
        video_url=video_url,
        raw=data,
    )


def _first_url(output) -> str:
    """A model's output is one URL, or a list of them (the video first)."""
    candidates = output if isinstance(output, list) else [output]
    for item in candidates:
        if isinstance(item, str) and item.startswith(("http://", "https://")):
            return item
    return ""


def _ratio(width: int, height: int) -> str:
    divisor = math.gcd(width, height) or 1
    return f"{width // divisor}:{height // divisor}"


def data_uri(image: ReferenceImage) -> str:
    """An image inline, as Replicate takes a file input that is not a URL."""
    return f"data:{image.content_type};base64,{base64.b64encode(image.content).decode()}"


class ReplicateClient(KeepsNoCharacters):
    protocol = "replicate"

    def __init__(self, backend):
        self.backend = backend
        self.http = ReplicateHTTP(backend)  # Authorization: Bearer <token>

    def create(
        self,
        *,
        prompt: str,
        model: str,
        seconds,
        size: str,
        characters: list[str],
        idempotency_key: str,
        images=(),
        start_image: ReferenceImage | None = None,
        end_image: ReferenceImage | None = None,
    ) -> RemoteJob:
        # Replicate has no idempotency keys and no character ids: characters travel as images.
        match = _MODEL.match(model)
        if not match:
            raise ProviderError(f"{model!r} is not a Replicate model name (owner/name).", code="invalid_model")
        try:
            width, height = (int(part) for part in size.lower().split("x"))
        except ValueError:
            raise ProviderError(f"{size!r} is not a size (WIDTHxHEIGHT).", code="invalid_size") from None
        offer = self.backend.offer().get(model, {})
        arguments = arguments_for(offer, DEFAULT_ARGUMENTS, end_image=end_image is not None)
        # The first frame ("{start_image}", or "{image}"): the creator's start image, else the first character's still.
        first = start_image or (images[0] if images else None)
        values = {
            "prompt": prompt,
            "seconds": int(seconds),
            "size": size,
            "width": width,
            "height": height,
            "ratio": _ratio(width, height),
            "aspect_ratio": _ratio(width, height),
            "image": data_uri(first) if first is not None else None,
            "start_image": data_uri(first) if first is not None else None,
            "end_image": data_uri(end_image) if end_image is not None else None,
        }
        body = {"input": fill_arguments(arguments, values)}
        # Called back when the prediction ends, where this site is reachable (polling goes on, slower, anyway).
        webhook = callback_url(self.backend)
        if webhook:
            body.update(webhooks.create_params(webhook))
        path = f"models/{quote(match[1], safe='')}/{quote(match[2], safe='')}/predictions"
        try:
            data = self.http.json("POST", path, json=body, is_create=True)
        except ProviderError as exc:
            if exc.code == "invalid_input" and first is None and "start" in image_roles_in(offer):
                # kling-v2.1 and its kind animate a start image: say how to give it one.
                exc.message = (
                    f"{exc.message} ({model} needs a start image: give one, or mention a character that has a still.)"
                )
                exc.args = (exc.message,)
            raise
        try:
            job = parse_prediction(data)
        except ProviderError as exc:
            # Replicate answered the create, so the prediction may exist: never send it blindly again.
            exc.maybe_sent = True
            raise
        job.webhook = bool(webhook)
        return job

    def verify_webhook(self, headers, body: bytes) -> Delivery:
        return webhooks.verify(self, headers, body)

    def retrieve(self, remote_id: str) -> RemoteJob:
        return parse_prediction(self.http.json("GET", f"predictions/{quote(remote_id, safe='')}"))

    def download(self, job: RemoteJob, variant: str, dest: IO[bytes]) -> int:
        return self.http.download_output(job, variant, dest)  # the video alone, from the provider's CDN

    def remix(self, remote_id: str, prompt: str, idempotency_key: str) -> RemoteJob:
        raise ProviderError("Replicate has no remix of a finished video.", code="unsupported")

    def delete(self, remote_id: str) -> None:
        """Cancel the prediction (Replicate cannot delete one through its API)."""
        self.http.json("POST", f"predictions/{quote(remote_id, safe='')}/cancel")

    def find_recent(self, lost: LostCreate) -> list[RemoteJob]:
        """Reconcile a create whose answer was lost: recent predictions of the same prompt and model, made
        while it was sent (Replicate lists predictions newest first)."""
        data = self.http.json("GET", "predictions")
        items = data.get("results") if isinstance(data.get("results"), list) else []
        return [
            parse_prediction(item)
            for item in items
            if isinstance(item, dict)
            and isinstance(item.get("input"), dict)
            and item["input"].get("prompt") == lost.prompt
            and item.get("model") in (None, lost.model)
            and lost.in_window(_timestamp(item.get("created_at")))
        ]


def _timestamp(value) -> float:
    """Replicate's ISO 8601 times (`2025-05-19T12:34:56.789012Z`) as unix seconds; 0 when unreadable."""
    if not isinstance(value, str):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
