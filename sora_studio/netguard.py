"""Which URLs the server may fetch on a creator's behalf (character clips given by URL).

Without this, "download my clip from http://169.254.169.254/…" or "…from http://127.0.0.1:5432"
would make the server fetch from its own private network (SSRF). Private, loopback, link-local
and reserved addresses are refused unless ALLOW_PRIVATE_FETCH is on (it is in development, where
the simulator serves clips on loopback).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    pass


def check(url: str) -> None:
    """Raise UnsafeURL with a reason a creator can read, or return if the URL may be fetched."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("Only http and https links can be fetched.")
    if settings.ALLOW_PRIVATE_FETCH:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(f"The host {parts.hostname!r} cannot be found.") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise UnsafeURL("That link points into a private network; use a public link or upload the clip.")
