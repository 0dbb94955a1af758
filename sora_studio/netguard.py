"""Which URLs the server may fetch on a creator's behalf (character clips given by URL), and the fetch.

Without this, "download my clip from http://169.254.169.254/…" or "…from http://127.0.0.1:5432"
would make the server fetch from its own private network (SSRF). Private, loopback, link-local
and reserved addresses are refused unless ALLOW_PRIVATE_FETCH is on (it is in development, where
the simulator serves clips on loopback).

Checking a URL and then handing the same string to an HTTP client is not enough: two URL parsers
read `http://127.0.0.1:8000\\@93.184.215.14/` differently (the check saw the public host, the client
connected to loopback), and a name can resolve to a public address for the check and to 127.0.0.1
a moment later for the fetch (DNS rebinding). So the URL is parsed once, by one strict parser that
refuses anything other parsers could read differently; the name is resolved once; and `fetch`
connects to exactly the address that was checked, sending the original Host header and verifying
TLS against the original host name. Redirects are refused, never followed.

In development (ALLOW_PRIVATE_FETCH) private addresses are allowed, but parsing and pinning are not
relaxed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from requests.certs import where as default_ca_bundle
from urllib3.util import parse_url

# The CA bundle used to verify https links (the same one `requests` uses); tests point it at their own CA.
CA_CERTS = default_ca_bundle()
CHUNK = 256 * 1024
HEADERS = {"Accept": "*/*", "Accept-Encoding": "identity", "User-Agent": "SoraStudio"}

PRIVATE = "That link points into a private network; use a public link or upload the clip."
AMBIGUOUS = (
    "That link is written in a way that could be read as two different addresses "
    "(a backslash, a user name or password, a '#', spaces or unusual characters); "
    "copy the plain link again, or upload the clip."
)
NUMERIC_HOST = (
    "That link spells an IP address in an unusual way; write it as four plain numbers "
    "(like 93.184.215.14) or use the host name."
)

# Spelled out rather than left to `ipaddress.is_global`, whose answers changed between Python
# releases (3.11.7 calls 192.0.0.8 and ::7f00:1 global).
_BLOCKED_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d, also :: and ::1
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # a NAT64 gateway reaches the IPv4 address inside
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)\Z")


class FetchError(Exception):
    """A clip link could not be fetched; the message is for the creator."""


class UnsafeURL(FetchError, ValueError):
    """The server must not fetch this link; the message is for the creator."""


@dataclass(frozen=True)
class Target:
    """A URL read once: what to connect to (`addresses`, all checked) and what to ask for."""

    scheme: str
    host: str  # as written, lower-case: the Host header and the TLS server name
    port: int
    path: str  # path and query, as sent on the request line
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.scheme == "https" else 80) else f"{host}:{self.port}"


def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name stands for. A module function so tests can swap the resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def check(url: str) -> None:
    """Raise UnsafeURL with a reason a creator can read, or return if the URL may be fetched.

    Early feedback for forms and commands; `fetch` checks again, on the addresses it connects to.
    """
    if settings.ALLOW_PRIVATE_FETCH:
        _parse(url)  # every address is allowed, so a name need not be resolved yet
    else:
        checked(url)


def checked(url: str) -> Target:
    """The URL read once and its host resolved once, every address checked; UnsafeURL if refused."""
    scheme, host, port, path, literal = _parse(url)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            raise UnsafeURL(f"The host {host!r} cannot be found.") from None
        if not addresses:
            raise UnsafeURL(f"The host {host!r} cannot be found.")
    parsed = []
    for address in addresses:
        try:
            parsed.append(ipaddress.ip_address(address))
        except ValueError:  # a scoped IPv6 address (fe80::1%eth0) and the like: never public
            raise UnsafeURL(PRIVATE) from None
    # Every answer is checked, not just the first: the connection may use any of them.
    if not settings.ALLOW_PRIVATE_FETCH and not all(is_public(a) for a in parsed):
        raise UnsafeURL(PRIVATE)
    return Target(scheme, host, port, path, tuple(str(a) for a in parsed))


def fetch(url: str, max_bytes: int, timeout: tuple[float, float] = (5, 30), total: float = 300) -> bytes:
    """GET `url` from the address that was checked, at most `max_bytes`; UnsafeURL or FetchError else."""
    target = checked(url)
    failure: Exception | None = None
    for address in target.addresses:
        pool = _pool(target, address, timeout)
        try:
            response = pool.urlopen(
                "GET",
                target.path,
                headers={**HEADERS, "Host": target.host_header},
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.ConnectTimeoutError as exc:  # refused, unreachable or silent: try the next address
            failure = exc
            pool.close()
            continue
        except urllib3.exceptions.HTTPError as exc:
            pool.close()
            raise FetchError(f"Could not download the clip: {_reason(exc)}.") from None
        try:
            return _read(response, max_bytes, deadline=time.monotonic() + total)
        finally:
            response.release_conn()
            pool.close()
    raise FetchError(f"Could not download the clip: {_reason(failure)}.")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """May the server connect here in production? Only to the public internet."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None or address in _IPV4_COMPATIBLE or address in _NAT64_LOCAL:
            return False
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return is_public(address.sixtofour)
        return address.is_global and not address.is_multicast and address.teredo is None
    return address.is_global and not address.is_multicast and not any(address in net for net in _BLOCKED_V4)


def _parse(url: str) -> tuple[str, str, int, str, str | None]:
    """(scheme, host, port, path, IP literal or None), or UnsafeURL.

    Only plain, unambiguous URLs pass: `scheme://host[:port][/path][?query]` in printable ASCII. The
    result must also be what urllib.parse and urllib3 (the parser under `requests`) read, so no
    other component that looks at the same string can reach a different host.
    """
    if not isinstance(url, str) or len(url) > 2000:
        raise UnsafeURL("Only http and https links can be fetched.")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise UnsafeURL("Only http and https links can be fetched.")
    if not all("\x21" <= ch <= "\x7e" for ch in url) or "\\" in url or "#" in url:
        raise UnsafeURL(AMBIGUOUS)
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:end], rest[end:]
    if "@" in authority or "%" in authority:
        raise UnsafeURL(AMBIGUOUS)
    if path.startswith("?"):
        path = "/" + path
    host, port = _split_authority(authority, scheme)
    literal = _ip_literal(host)
    if literal is None:
        labels = host.rstrip(".").split(".")
        if _NUMERIC_LABEL.match(labels[-1]):  # 2130706433, 0x7f.1, 127.1, 017700000001, 127.0.0.01
            raise UnsafeURL(NUMERIC_HOST)
        if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
            raise UnsafeURL(AMBIGUOUS)
    _agrees_with_other_parsers(url, scheme, host, port)
    return scheme, host, port, path or "/", literal


def _split_authority(authority: str, scheme: str) -> tuple[str, int]:
    if authority.startswith("["):
        host, bracket, after = authority[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise UnsafeURL(AMBIGUOUS)
        port_text = after[1:] if after else None
    else:
        host, colon, port_text = authority.partition(":")
        port_text = port_text if colon else None
    if port_text is None:
        port = 443 if scheme == "https" else 80
    elif port_text.isdigit() and port_text.isascii() and 0 < int(port_text) < 65536 and len(port_text) <= 5:
        port = int(port_text)
    else:
        raise UnsafeURL(AMBIGUOUS)
    if not host:
        raise UnsafeURL("Only http and https links can be fetched.")
    return host.lower(), port


def _ip_literal(host: str) -> str | None:
    """The address a host written as an IP is, in canonical form; None for a name."""
    if ":" in host:  # only ever from [brackets]
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise UnsafeURL(AMBIGUOUS) from None
    try:
        # Strict: four decimal parts, no leading zeros. Other spellings are caught by the caller.
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        return None


def _agrees_with_other_parsers(url: str, scheme: str, host: str, port: int) -> None:
    default = 443 if scheme == "https" else 80
    try:
        split = urlsplit(url)
        theirs = [(split.scheme.lower(), (split.hostname or "").lower(), split.port or default)]
        parsed = parse_url(url)
        theirs.append(((parsed.scheme or "").lower(), (parsed.host or "").strip("[]").lower(), parsed.port or default))
    except ValueError:
        raise UnsafeURL(AMBIGUOUS) from None
    if any(other != (scheme, host, port) for other in theirs):
        raise UnsafeURL(AMBIGUOUS)


def _pool(target: Target, address: str, timeout: tuple[float, float]) -> urllib3.HTTPConnectionPool:
    """A connection pool whose connections go to `address` (checked), whatever the host name now resolves to."""
    options = {"timeout": urllib3.Timeout(connect=timeout[0], read=timeout[1]), "retries": False, "maxsize": 1}
    if target.scheme == "https":
        # SNI and certificate checks use the name the creator gave, not the address.
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            cert_reqs="CERT_REQUIRED",
            ca_certs=CA_CERTS,
            server_hostname=target.host,
            assert_hostname=target.host,
            **options,
        )
    return urllib3.HTTPConnectionPool(address, target.port, **options)


def _read(response, max_bytes: int, deadline: float) -> bytes:
    if 300 <= response.status < 400:
        raise FetchError("The clip link redirects; give the final link instead.")
    if response.status != 200:
        raise FetchError(f"The clip link answered HTTP {response.status}.")
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise FetchError(f"The clip is larger than {_megabytes(max_bytes)}.")
    chunks, size = [], 0
    try:
        for chunk in response.stream(CHUNK, decode_content=True):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"The clip is larger than {_megabytes(max_bytes)}.")
            if time.monotonic() > deadline:
                raise FetchError("The clip took too long to download.")
            chunks.append(chunk)
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"Could not download the clip: {_reason(exc)}.") from None
    return b"".join(chunks)


def _megabytes(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size} bytes"


def _reason(exc: Exception | None) -> str:
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "its secure connection could not be verified"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # before its base class, ConnectTimeoutError
        return "the server refused the connection"
    if isinstance(exc, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError)):
        return "the server did not answer in time"
    return type(exc).__name__ if exc else "no address to connect to"
