"""Google's Veo through the Gemini API: a long-running operation per video, the key in `x-goog-api-key`.

# Reference: https://ai.google.dev/gemini-api/docs/video and the official SDK, google-genai 2.x:
# google/genai/models.py (`_GenerateVideosParameters_to_mldev`, `_GenerateVideosOperation_from_mldev`),
# google/genai/operations.py, google/genai/files.py (`download`).

Wire shape, as the SDK speaks it:
- `POST {base}/models/{model}:predictLongRunning` `{"instances": [{"prompt", "image"?, "lastFrame"?,
  "referenceImages"?}],
  "parameters": {"durationSeconds", "aspectRatio", "resolution"}}` -> `{"name": "models/{model}/operations/{id}"}`
- `GET {base}/{name}` -> the operation; an unfinished one has no `done` at all (false is omitted). Finished:
  `error: {code, message}` or `response.generateVideoResponse` with `generatedSamples[].video.uri`, or with
  only `raiMediaFilteredCount` / `raiMediaFilteredReasons` when safety filters removed the video.
- the video `uri` (`{base}/files/{id}:download?alt=media`) is fetched with the key, like any API call.
- errors: `{"error": {"code": 400, "message", "status": "INVALID_ARGUMENT", "details": [...]}}`; a wrong key is
  a 400 whose ErrorInfo reason is API_KEY_INVALID, not a 401.
"""

from __future__ import annotations

import base64
import re
from typing import IO
from urllib.parse import quote, urljoin

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
from generations.providers.http import HTTPClient, write_body

SECONDS = (4, 6, 8)
MAX_REFERENCE_IMAGES = 3
MAX_REDIRECTS = 5
_OPERATION = re.compile(r"models/[^/?#]+/operations/[^/?#]+")
# google.rpc.Code, for the operation errors a person may read.
_RPC_CODES = {
    1: "cancelled",
    2: "unknown",
    3: "invalid_argument",
    4: "deadline_exceeded",
    5: "not_found",
    7: "permission_denied",
    8: "resource_exhausted",
    9: "failed_precondition",
    10: "aborted",
    13: "internal",
    14: "unavailable",
}


def goog_key(key: str) -> dict[str, str]:
    return {"x-goog-api-key": key}


def parameters_for(seconds, size: str) -> dict:
    """The studio's (seconds, "WxH") as Veo's parameters: 4/6/8 s, 16:9 or 9:16, 720p or 1080p."""
    try:
        duration = int(seconds)
        width, height = (int(side) for side in size.lower().split("x"))
    except (TypeError, ValueError):
        raise ProviderError(f"Veo cannot make a {seconds} s video at {size!r}.", code="unsupported_size") from None
    if duration not in SECONDS:
        raise ProviderError(f"Veo makes videos of 4, 6 or 8 seconds, not {duration}.", code="unsupported_duration")
    return {
        "durationSeconds": duration,
        "aspectRatio": "16:9" if width >= height else "9:16",
        "resolution": "1080p" if min(width, height) >= 1080 else "720p",
    }


def inline_image(image: ReferenceImage) -> dict:
    """An Image as google-genai serialises `types.Image(image_bytes=..., mime_type=...)` (`_Image_to_mldev`)."""
    return {"bytesBase64Encoded": base64.b64encode(image.content).decode("ascii"), "mimeType": image.content_type}


def reference_image(image: ReferenceImage) -> dict:
    return {"image": inline_image(image), "referenceType": "asset"}


def parse_operation(data: dict, name: str) -> RemoteJob:
    """Validate an operation strictly and say where the video stands."""
    if data.get("name") != name:
        raise ProviderError(
            "Veo answered with an object that is not this operation.", code="invalid_response", transient=True
        )
    if data.get("done") is not True:
        # The Gemini API reports no progress; the simulator adds `metadata.progressPercent` (operation
        # metadata is free-form), which is read when present.
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        try:
            progress = max(0, min(99, int(metadata.get("progressPercent") or 0)))
        except (TypeError, ValueError, OverflowError):  # a string, NaN or infinity
            progress = 0
        return RemoteJob(id=name, status=RUNNING, progress=progress, raw=data)
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        return RemoteJob(
            id=name,
            status=FAILED,
            error_code=(_RPC_CODES.get(code) if isinstance(code, int) else None) or "video_generation_failed",
            error_message=str(error.get("message") or "Veo could not make the video.")[:1000],
            raw=data,
        )
    response = data.get("response")
    result = response.get("generateVideoResponse") if isinstance(response, dict) else None
    if not isinstance(result, dict):
        raise ProviderError(
            "Veo says the operation is done but sent neither a result nor an error.",
            code="invalid_response",
            transient=True,
        )
    samples = result.get("generatedSamples")
    video = samples[0].get("video") if isinstance(samples, list) and samples and isinstance(samples[0], dict) else None
    uri = video.get("uri") if isinstance(video, dict) else None
    if isinstance(uri, str) and uri.startswith(("http://", "https://")):
        return RemoteJob(id=name, status=COMPLETED, progress=100, video_url=uri, raw=data)
    reasons = result.get("raiMediaFilteredReasons")
    reasons = [str(reason) for reason in reasons if reason] if isinstance(reasons, list) else []
    if reasons or result.get("raiMediaFilteredCount"):
        # A safety refusal: permanent for this prompt, and said in Google's words.
        message = "Veo's safety filters blocked the video: " + ("; ".join(reasons) or "no reason given") + "."
        return RemoteJob(
            id=name, status=FAILED, error_code="moderation_blocked", error_message=message[:1000], raw=data
        )
    return RemoteJob(
        id=name,
        status=FAILED,
        error_code="no_video",
        error_message="Veo finished the operation without a video.",
        raw=data,
    )


class GoogleHTTPClient(HTTPClient):
    """HTTPClient that reads Google's error shape: the status word, ErrorInfo reason and RetryInfo delay."""

    def error_from(self, response: requests.Response, *, is_create: bool) -> ProviderError:
        plain = super().error_from(response, is_create=is_create)
        error = _google_error(response)
        raw_details = error.get("details")
        details = [item for item in raw_details if isinstance(item, dict)] if isinstance(raw_details, list) else []
        reason = next((str(item.get("reason")) for item in details if item.get("reason")), "")
        status_word = str(error.get("status") or "")
        message = str(error.get("message") or plain.message)[:500]
        if reason == "API_KEY_INVALID" or response.status_code in (401, 403):
            return ProviderError(
                f"{self.backend.name} refused the API key (HTTP {response.status_code}): {message}",
                code="invalid_api_key",
                status=response.status_code,
                transient=False,
            )
        retry_after = plain.retry_after
        if retry_after is None:
            retry_after = next((_seconds(item.get("retryDelay")) for item in details if item.get("retryDelay")), None)
        code = (reason or status_word).lower()[:80] or plain.code
        return ProviderError(
            message,
            code=code,
            status=plain.status,
            transient=plain.transient,
            retry_after=retry_after,
            maybe_sent=plain.maybe_sent,
        )


def _google_error(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _seconds(duration) -> float | None:
    """A google.protobuf.Duration as JSON writes it: "37s", "1.5s"."""
    match = re.fullmatch(r"(\d{1,6}(?:\.\d{1,9})?)s", str(duration))
    return float(match.group(1)) if match else None


class GeminiVeoClient(KeepsNoCharacters):
    protocol = "gemini_veo"

    def __init__(self, backend):
        self.http = GoogleHTTPClient(backend, auth=goog_key)

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
        # The Gemini API has no idempotency keys: a create whose answer was lost is not re-sent (see lifecycle).
        instance: dict = {"prompt": prompt}
        # The SDK sends generate_videos(image=...) as instances[0].image and
        # GenerateVideosConfig(last_frame=...) as instances[0].lastFrame.
        if start_image is not None:
            instance["image"] = inline_image(start_image)
        if end_image is not None:
            instance["lastFrame"] = inline_image(end_image)
        if images:
            instance["referenceImages"] = [reference_image(image) for image in list(images)[:MAX_REFERENCE_IMAGES]]
        body = {"instances": [instance], "parameters": parameters_for(seconds, size)}
        data = self.http.json("POST", f"models/{quote(model, safe='')}:predictLongRunning", json=body, is_create=True)
        name = data.get("name")
        if not isinstance(name, str) or not _OPERATION.fullmatch(name):
            raise ProviderError(
                "Veo did not return an operation name.", code="invalid_response", transient=True, maybe_sent=True
            )
        return RemoteJob(id=name, status=QUEUED, seconds=str(int(seconds)), raw=data)

    def retrieve(self, remote_id: str) -> RemoteJob:
        if not _OPERATION.fullmatch(remote_id):
            # Only ever joined onto the base URL as it is: nothing else may be asked of the provider.
            raise ProviderError(f"{remote_id[:80]!r} is not a Veo operation name.", code="invalid_remote_id")
        response = self.http.request("GET", remote_id)
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(
                "Veo answered with something that is not JSON.", code="invalid_response", transient=True
            ) from None
        if not isinstance(data, dict):
            raise ProviderError("Veo answered with unexpected JSON.", code="invalid_response", transient=True)
        return parse_operation(data, remote_id)

    def download(self, job: RemoteJob, variant: str, dest: IO[bytes]) -> int:
        if variant != "video":
            raise ProviderError("Veo makes no thumbnail.", code="no_asset")
        if not job.video_url:
            raise ProviderError("Veo gave no video link for this operation.", code="no_asset")
        # Redirects are followed one by one here, so each hop goes through the origin check that keeps
        # the key on this backend (requests would forward x-goog-api-key to any host on a redirect).
        url = job.video_url
        for _ in range(MAX_REDIRECTS + 1):
            response = self.http.request("GET", url, stream=True, allow_redirects=False)
            if not response.is_redirect:
                return write_body(response, dest, self.http.backend.name)
            url = urljoin(url, response.headers["Location"])
            response.close()
        raise ProviderError("Veo's video link redirected too many times.", code="too_many_redirects", transient=True)

    def remix(self, remote_id: str, prompt: str, idempotency_key: str) -> RemoteJob:
        raise ProviderError("Veo cannot remix a finished video.", code="unsupported")

    def delete(self, remote_id: str) -> None:
        raise ProviderError("The Gemini API cannot delete a Veo operation.", code="unsupported")

    def find_recent(self, lost: LostCreate) -> list[RemoteJob]:
        return []  # the Gemini API lists no video operations to reconcile against
