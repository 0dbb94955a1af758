"""The HTTP plumbing both protocol clients share: a session, timeouts, error classification."""

from __future__ import annotations

import functools
import http.cookiejar
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import IO
from urllib.parse import urlsplit

import requests
from django.conf import settings

from generations.providers.base import ProviderError
from sora_studio.fields import DecryptionError

log = logging.getLogger(__name__)

USER_AGENT = "SoraStudio/1.0"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP-date: rare from APIs; fall back to our own backoff


# One kept-alive session per backend (and key) per thread: a job's create, polls and downloads, and the next
# job's, reuse the connections to the provider, as a bare client would. Per thread: a requests.Session is
# not shared between threads. No cookies are kept (the key is the only credential sent). A thread keeps the
# sessions of its last few backends (KEPT_SESSIONS) and closes one unused for IDLE_SECONDS, so connections do
# not pile up on the provider's side (a threaded server holds a thread for each one kept open).
_threads = threading.local()
_NO_COOKIES = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
KEPT_SESSIONS = 8
IDLE_SECONDS = 30.0


def _session(backend_id, base_url: str, auth_headers: dict[str, str]) -> requests.Session:
    sessions: OrderedDict = _threads.__dict__.setdefault("sessions", OrderedDict())
    now = time.monotonic()
    key = (backend_id, base_url, tuple(sorted(auth_headers.items())))
    for old, (_, used) in list(sessions.items()):
        # Its key or URL changed, it has not been used for a while, or too many are kept: let it go.
        if (old != key and old[0] == backend_id) or now - used > IDLE_SECONDS:
            sessions.pop(old)[0].close()
    kept = sessions.pop(key, None)
    session = kept[0] if kept else _new_session(auth_headers)
    sessions[key] = (session, now)  # the most recently used last
    while len(sessions) > KEPT_SESSIONS:
        sessions.popitem(last=False)[1][0].close()
    return session


def _new_session(auth_headers: dict[str, str]) -> requests.Session:
    session = requests.Session()
    session.cookies.set_policy(_NO_COOKIES)
    session.headers["User-Agent"] = USER_AGENT
    session.headers.update(auth_headers)
    # The environment's proxy settings are read once per origin (_proxies), not on every request.
    session.trust_env = False
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return session


def close_sessions() -> None:
    """Close this thread's kept sessions (and their connections): at the end of a test, or of a thread's work."""
    for session, _ in _threads.__dict__.pop("sessions", {}).values():
        session.close()


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _proxies(url: str) -> dict[str, str]:
    """The proxies the environment (HTTPS_PROXY, NO_PROXY …) gives `url`, as requests would find them."""
    parts = urlsplit(url)
    setting = tuple(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES)
    return _proxies_for(f"{parts.scheme}://{parts.netloc}", setting)


@functools.lru_cache(maxsize=256)
def _proxies_for(origin: str, setting: tuple) -> dict[str, str]:
    return requests.utils.get_environ_proxies(origin)


class HTTPClient:
    """A requests.Session bound to one backend: base URL, bearer key, timeouts.

    The key goes only into this session's Authorization header, to this backend's base URL.
    Nothing here logs headers or bodies.
    """

    def __init__(self, backend, auth: Callable[[str], dict[str, str]] = bearer):
        self.backend = backend
        self.base_url = backend.base_url.rstrip("/")
        try:
            key = backend.key
        except DecryptionError as exc:
            raise ProviderError(str(exc), code="api_key_unreadable") from None
        # How this protocol presents its key (Bearer, x-goog-api-key, Key …), plus any version header.
        self.auth_headers = auth(key)
        self.session = _session(backend.pk, self.base_url, self.auth_headers)
        self.timeout = (settings.PROVIDER_CONNECT_TIMEOUT, settings.PROVIDER_READ_TIMEOUT)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, is_create: bool = False, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        url = path if path.startswith(("http://", "https://")) else self.url(path)
        try:
            same_origin = _same_origin(url, self.base_url)
        except ValueError:  # a link with an impossible port or a broken address, from the provider
            raise ProviderError(
                f"{self.backend.name} gave a link that is not a valid URL.", code="invalid_response"
            ) from None
        if not same_origin:
            # A download link on a CDN or another host: the key is for this backend only.
            kwargs["headers"] = {**kwargs.get("headers", {}), **dict.fromkeys(self.auth_headers)}
        kwargs.setdefault("proxies", _proxies(url))
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.ConnectTimeout as exc:
            raise ProviderError(
                f"{self.backend.name} did not accept a connection in time.", code="connect_timeout", transient=True
            ) from exc
        except requests.ReadTimeout as exc:
            raise ProviderError(
                f"{self.backend.name} did not answer in time.",
                code="read_timeout",
                transient=True,
                maybe_sent=is_create,
            ) from exc
        except requests.ConnectionError as exc:
            # A refused or reset connection: when it breaks after the request went out we cannot
            # tell, so a create is treated as possibly sent.
            raise ProviderError(
                f"Could not reach {self.backend.name}.",
                code="connection_error",
                transient=True,
                maybe_sent=is_create and _sent(exc),
            ) from exc
        except requests.RequestException as exc:
            raise ProviderError(
                f"Request to {self.backend.name} failed: {type(exc).__name__}.",
                code="request_error",
                transient=True,
                maybe_sent=is_create,
            ) from exc
        if response.status_code >= 400:
            raise self.error_from(response, is_create=is_create)
        return response

    def json(self, method: str, path: str, **kwargs) -> dict:
        return self.json_and_headers(method, path, **kwargs)[0]

    def json_and_headers(self, method: str, path: str, **kwargs) -> tuple[dict, Mapping[str, str]]:
        """The answer's JSON object and its headers (a provider's poll hint rides in a header)."""
        response = self.request(method, path, **kwargs)
        try:
            data = response.json()
        except (ValueError, json.JSONDecodeError):
            raise ProviderError(
                f"{self.backend.name} answered with something that is not JSON.",
                code="invalid_response",
                transient=True,
                maybe_sent=kwargs.get("is_create", False),
            ) from None
        if not isinstance(data, dict):
            raise ProviderError(
                f"{self.backend.name} answered with unexpected JSON.",
                code="invalid_response",
                transient=True,
                maybe_sent=kwargs.get("is_create", False),
            )
        return data, response.headers

    def download(self, url_or_path: str, dest: IO[bytes], *, params=None) -> int:
        """Stream a file into `dest`; returns the byte count."""
        response = self.request("GET", url_or_path, params=params, stream=True)
        return write_body(response, dest, self.backend.name)

    def download_output(self, job, variant: str, dest: IO[bytes]) -> int:
        """A result that is one video link and no thumbnail (Runway, fal, Replicate): fetched from wherever the
        provider put it (a CDN: `request` sends the key to this backend's own origin only). Asking for anything
        else is a permanent "no such asset", which the studio reads as "no thumbnail"."""
        if variant != "video" or not job.video_url:
            raise ProviderError(f"{self.backend.name} offers no {variant} for this job.", code="no_asset")
        return self.download(job.video_url, dest)

    def error_from(self, response: requests.Response, *, is_create: bool) -> ProviderError:
        status = response.status_code
        message, code = _error_fields(response)
        message = message or f"{self.backend.name} answered HTTP {status}."
        if status == 429:
            return ProviderError(
                message, code=code or "rate_limited", status=status, transient=True, retry_after=_retry_after(response)
            )
        if status >= 500 or status == 408:
            # A gateway error on a create may hide a job that was in fact started.
            return ProviderError(
                message,
                code=code or f"http_{status}",
                status=status,
                transient=True,
                retry_after=_retry_after(response),
                maybe_sent=is_create and status in (502, 504),
            )
        return ProviderError(message, code=code or f"http_{status}", status=status, transient=False)


def _error_fields(response: requests.Response) -> tuple[str, str]:
    """Message and code from `{"error": {"message", "code"}}`, `{"error": "..."}` or `{"message"}`."""
    try:
        data = response.json()
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    error = data.get("error", data)
    if isinstance(error, str):
        return error[:500], str(data.get("code") or "")
    if isinstance(error, dict):
        message = error.get("message") or data.get("message") or ""
        code = error.get("code") or error.get("type") or ""
        return str(message)[:500], str(code)[:80]
    return "", ""


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _sent(exc: requests.ConnectionError) -> bool:
    """True unless the connection was never made (then the request cannot have been received)."""
    text = repr(exc)
    return not any(marker in text for marker in ("NewConnectionError", "Connection refused", "NameResolutionError"))


def write_body(response: requests.Response, dest: IO[bytes], name: str) -> int:
    """Stream a response's body into `dest`; returns the byte count. A body cut short (a reset, a connection
    closed early) or an empty one is a transient provider error: the download is tried again."""
    size = 0
    with response:
        try:
            for chunk in response.iter_content(chunk_size=256 * 1024):
                dest.write(chunk)
                size += len(chunk)
        except requests.RequestException as exc:
            raise ProviderError(
                f"{name}'s download broke off after {size} bytes ({type(exc).__name__}).",
                code="download_cut_short",
                transient=True,
            ) from exc
    if size == 0:
        raise ProviderError(f"{name} sent an empty file.", code="empty_download", transient=True)
    return size
