"""Where the simulator may send a request of its own: fetching a character clip (task_api) or calling
back a finished job (Replicate, fal). A real provider reaches whatever it is given; the simulator reaches
only SIMULATOR_FETCH_ORIGINS (by default the studio's own SITE_URL), so it is nobody's request cannon."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from urllib3.util import parse_url

DEFAULT_PORTS = {"http": 80, "https": 443}
AMBIGUOUS = "ambiguous"  # not a plain http(s) link: two parsers could read it as two hosts
ELSEWHERE = "elsewhere"  # a plain link, to an origin the simulator does not reach


def _origin(scheme: str | None, host: str | None, port: int | None) -> tuple[str, str, int]:
    scheme = (scheme or "").lower()
    return scheme, (host or "").strip("[]").lower(), port or DEFAULT_PORTS.get(scheme, 0)


def allowed() -> set[tuple[str, str, int]]:
    """SIMULATOR_FETCH_ORIGINS, or else the origin of the studio's SITE_URL."""
    origins = set()
    for origin in settings.SIMULATOR_FETCH_ORIGINS or [settings.SITE_URL]:
        parsed = urlsplit(origin)
        origins.add(_origin(parsed.scheme, parsed.hostname, parsed.port))
    return origins


def refusal(url: str) -> str:
    """Why the simulator will not send a request to `url` (AMBIGUOUS or ELSEWHERE), or "" if it may."""
    # A link two parsers read differently (`http://a\\@b/`: urllib.parse says b, urllib3 says a)
    # could pass the check as one host and be reached at another: refuse those outright.
    if not all("\x21" <= ch <= "\x7e" for ch in url) or "\\" in url:
        return AMBIGUOUS
    try:
        theirs, ours = parse_url(url), urlsplit(url)  # parse_url is what `requests` uses
        readings = {_origin(theirs.scheme, theirs.host, theirs.port), _origin(ours.scheme, ours.hostname, ours.port)}
    except ValueError:
        return AMBIGUOUS
    if theirs.auth or ours.username is not None or len(readings) != 1:
        return AMBIGUOUS
    scheme = next(iter(readings))[0]
    if scheme not in DEFAULT_PORTS:
        return AMBIGUOUS
    return "" if readings.pop() in allowed() else ELSEWHERE
