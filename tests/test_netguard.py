"""The server fetches creator-given clip URLs only from the public internet (no SSRF).

The refusals are tried against a real listener on loopback: "refused" means nothing connected to it,
not just that a check said no.
"""

import datetime
import socket
import ssl

import pytest
import urllib3

from characters import registry
from characters.forms import CharacterForm
from characters.models import BindingStatus
from sora_studio import netguard
from tests.factories import make_character
from tests.listener import Listener

PUBLIC = "93.184.215.14"  # a literal public address: no DNS needed


@pytest.fixture
def production(settings):
    settings.ALLOW_PRIVATE_FETCH = False


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",
        "http://localhost/",
        "http://[::1]/x.mp4",
        "http://10.0.0.5/clip.mp4",
        "http://192.168.1.1/clip.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "file:///etc/passwd",
        "ftp://example.com/clip.mp4",
        "gopher://127.0.0.1/",
    ],
)
def test_private_and_non_http_urls_are_refused(production, url):
    with pytest.raises(netguard.UnsafeURL):
        netguard.check(url)


def test_a_public_address_passes(production):
    netguard.check("http://93.184.215.14/clip.mp4")  # a literal public address: no DNS needed


def test_development_allows_loopback_for_the_simulator(settings):
    settings.ALLOW_PRIVATE_FETCH = True
    netguard.check("http://127.0.0.1:8000/simulator/task/v1/files/x.mp4")
    with pytest.raises(netguard.UnsafeURL):
        netguard.check("file:///etc/passwd")


@pytest.mark.django_db
def test_the_character_form_says_why_a_private_link_is_refused(production, alice):
    form = CharacterForm(data={"name": "Rex", "handle": "rex", "video_url": "http://127.0.0.1:5432/"}, owner=alice)
    assert not form.is_valid()
    assert "private network" in str(form.errors["video_url"])


@pytest.mark.django_db
def test_a_worker_never_fetches_a_private_link(production, alice, backend):
    character = make_character(alice, "rex", source_url="http://169.254.169.254/latest/meta-data/")
    registry.bind(character, backend)
    registry.register(character.bindings.get().pk)
    binding = character.bindings.get()
    assert binding.status == BindingStatus.FAILED and "private network" in binding.error


# --- the fetch, against a real loopback listener ---------------------------------------------------


@pytest.fixture
def listener():
    listening = Listener()
    yield listening
    listening.close()


@pytest.fixture
def resolver(monkeypatch):
    """Names the tests make up, resolved without DNS; any other name goes to the real resolver."""
    names = {
        "clips.test": ["127.0.0.1"],
        "other.test": ["127.0.0.1"],
        "sneaky.test": ["127.0.0.1"],
        "half-public.test": [PUBLIC, "127.0.0.1"],
        "metadata.google.internal": ["169.254.169.254"],
        "ipv6-only.test": ["::1"],
    }
    real = netguard.resolve
    monkeypatch.setattr(netguard, "resolve", lambda host, port: names[host] if host in names else real(host, port))
    return names


# Each spelling reaches (or would reach, read by some parser) this machine or its private network.
SPELLINGS = [
    "http://127.0.0.1:{port}/clip.mp4",
    "HTTP://127.0.0.1:{port}/clip.mp4",
    "http://localhost:{port}/clip.mp4",
    "http://127.0.0.1.:{port}/",  # trailing dot
    "http://127.1:{port}/",  # short form
    "http://0x7f.1:{port}/",  # hex
    "http://0x7f000001:{port}/",
    "http://2130706433:{port}/",  # decimal
    "http://017700000001:{port}/",  # octal
    "http://0177.0.0.1:{port}/",
    "http://127.0.0.01:{port}/",  # leading zero
    "http://0.0.0.0:{port}/",
    "http://[::]:{port}/",
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped
    "http://[::ffff:7f00:1]:{port}/",
    "http://[::127.0.0.1]:{port}/",  # IPv4-compatible
    "http://[64:ff9b::7f00:1]:{port}/",  # NAT64 of 127.0.0.1
    "http://[64:ff9b:1::7f00:1]:{port}/",  # local-use NAT64
    "http://[2002:7f00:1::]:{port}/",  # 6to4 of 127.0.0.1
    "http://[fe80::1]:{port}/",  # link-local
    "http://10.0.0.5:{port}/",
    "http://172.16.0.1:{port}/",
    "http://192.168.1.1:{port}/",
    "http://100.64.0.1:{port}/",  # carrier-grade NAT
    "http://192.0.0.8:{port}/",  # IETF protocol assignments (Python 3.11 calls it global)
    "http://169.254.169.254:{port}/latest/meta-data/",  # cloud metadata
    "http://[fd00:ec2::254]:{port}/latest/meta-data/",  # AWS metadata over IPv6
    "http://metadata.google.internal:{port}/computeMetadata/v1/",
    "http://sneaky.test:{port}/clip.mp4",  # a public-looking name for loopback
    "http://half-public.test:{port}/clip.mp4",  # one answer public, one loopback
    "http://127.0.0.1:{port}\\@" + PUBLIC + "/../x",  # urllib.parse sees the public host, urllib3 loopback
    "http://" + PUBLIC + "\\@127.0.0.1:{port}/",  # and the other way round
    "http://public@127.0.0.1:{port}/",  # userinfo
    "http://" + PUBLIC + ":80@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}#@" + PUBLIC + "/",  # fragment before the "authority"
    "http://" + PUBLIC + "#@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}?@" + PUBLIC + "/",  # query before the "authority"
    "http://127.0.0.1:{port}%2f@" + PUBLIC + "/",  # percent-encoding in the authority
    "http://127.0.0.1 :{port}/",  # whitespace
    "http://127.0.0.1:{port}/\tclip.mp4",  # control character
    "http://127.0.0.1\t:{port}/",
    "http://\uff11\uff12\uff17.0.0.1:{port}/",  # full-width digits, which IDNA folds to 127
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_no_spelling_of_a_private_address_makes_the_server_connect(production, resolver, listener, spelling):
    url = spelling.format(port=listener.port)
    with pytest.raises(netguard.UnsafeURL):
        netguard.fetch(url, max_bytes=1000, timeout=(1, 1))
    assert listener.quiet(), f"{url!r} reached the listener"


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://127.0.0.1:8000\\@" + PUBLIC + "/", "could be read as two different addresses"),
        ("http://user:pass@" + PUBLIC + "/clip.mp4", "could be read as two different addresses"),
        ("http://2130706433/", "spells an IP address in an unusual way"),
        ("http://[::ffff:127.0.0.1]/", "points into a private network; use a public link or upload the clip"),
    ],
)
def test_a_refusal_tells_the_creator_why(production, url, message):
    with pytest.raises(netguard.UnsafeURL, match=message):
        netguard.check(url)


def test_public_spellings_pass_the_check(production):
    assert netguard.checked(f"https://{PUBLIC}:8443/a/clip.mp4?sig=1").addresses == (PUBLIC,)
    assert netguard.checked(f"http://{PUBLIC}?sig=1").path == "/?sig=1"
    assert netguard.checked("http://[2606:4700::1]/clip.mp4").addresses == ("2606:4700::1",)
    assert netguard.checked("http://[64:ff9b::5db8:d70e]/clip.mp4")  # NAT64 of a public address


def test_a_name_is_resolved_once_and_the_checked_address_is_the_one_connected_to(production, listener, monkeypatch):
    """DNS rebinding: the first answer is public, every later one is loopback. The fetch must use the first."""
    lookups, connects = [], []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = PUBLIC if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    def connect(address, *args, **kwargs):
        connects.append(address)
        if address[0] == "127.0.0.1":
            return socket.create_connection(address, *args)
        raise ConnectionRefusedError("no internet in tests")  # stands in for the public server

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", connect)

    with pytest.raises(netguard.FetchError, match="refused the connection"):
        netguard.fetch(f"http://rebind.test:{listener.port}/clip.mp4", max_bytes=1000)

    assert lookups == ["rebind.test"]
    assert connects == [(PUBLIC, listener.port)]
    assert listener.quiet()


def test_the_fetch_connects_to_the_checked_address_with_the_original_host(settings, resolver, listener):
    settings.ALLOW_PRIVATE_FETCH = True  # clips.test is on loopback here
    assert netguard.fetch(f"http://clips.test:{listener.port}/a/clip.mp4?sig=x", max_bytes=1000) == b"clip"
    request = listener.requests[0]
    assert request.startswith(b"GET /a/clip.mp4?sig=x HTTP/1.1\r\n")
    assert f"\r\nHost: clips.test:{listener.port}\r\n".encode() in request


def test_development_keeps_the_parsing_rules(settings, listener):
    settings.ALLOW_PRIVATE_FETCH = True
    for url in [
        f"http://public@127.0.0.1:{listener.port}/",
        f"http://127.0.0.1:{listener.port}\\@{PUBLIC}/",
        f"http://2130706433:{listener.port}/",
    ]:
        with pytest.raises(netguard.UnsafeURL):
            netguard.fetch(url, max_bytes=1000)
    assert listener.quiet()


def test_a_redirect_is_refused_not_followed(settings, listener):
    settings.ALLOW_PRIVATE_FETCH = True
    target = Listener()
    redirecting = Listener(
        reply=(
            f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{target.port}/x\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    try:
        with pytest.raises(netguard.FetchError, match="redirects; give the final link"):
            netguard.fetch(f"http://127.0.0.1:{redirecting.port}/clip.mp4", max_bytes=1000)
        assert redirecting.connections == 1 and target.quiet()
    finally:
        target.close()
        redirecting.close()


def test_a_clip_over_the_limit_is_refused(settings):
    settings.ALLOW_PRIVATE_FETCH = True
    big = Listener(reply=b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 5000)  # no Content-Length
    try:
        with pytest.raises(netguard.FetchError, match="larger than 1000 bytes"):
            netguard.fetch(f"http://127.0.0.1:{big.port}/clip.mp4", max_bytes=1000)
    finally:
        big.close()


@pytest.fixture
def tls_listener(tmp_path, monkeypatch):
    """An https server on loopback whose certificate names clips.test, trusted by the fetch."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clips.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("clips.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    monkeypatch.setattr(netguard, "CA_CERTS", str(cert_file))
    listening = Listener(tls=context)
    yield listening
    listening.close()


def test_https_is_pinned_and_still_verified_against_the_host_name(settings, resolver, tls_listener):
    settings.ALLOW_PRIVATE_FETCH = True
    assert netguard.fetch(f"https://clips.test:{tls_listener.port}/clip.mp4", max_bytes=1000) == b"clip"
    # Same address, another name: the certificate does not cover it, so nothing is downloaded.
    with pytest.raises(netguard.FetchError, match="secure connection could not be verified"):
        netguard.fetch(f"https://other.test:{tls_listener.port}/clip.mp4", max_bytes=1000)


@pytest.mark.django_db(transaction=True)
def test_development_still_downloads_the_studios_own_signed_clip_link(settings, live_server, alice):
    settings.ALLOW_PRIVATE_FETCH = True
    settings.SITE_URL = live_server.url
    mossy = make_character(alice, "mossy", clip=b"\x00\x00\x00\x18ftypmp42 a clip")
    link = registry.clip_link(mossy)

    assert netguard.fetch(link, max_bytes=1000) == b"\x00\x00\x00\x18ftypmp42 a clip"
    copy = make_character(alice, "copy", source_url=link)
    registry.fetch_clip(copy)
    copy.refresh_from_db()
    assert copy.source_clip.read() == b"\x00\x00\x00\x18ftypmp42 a clip"


@pytest.mark.django_db
def test_a_worker_never_fetches_a_link_that_parses_two_ways(production, alice, backend, listener):
    character = make_character(alice, "rex", source_url=f"http://127.0.0.1:{listener.port}\\@{PUBLIC}/../x")
    registry.bind(character, backend)
    registry.register(character.bindings.get().pk)
    binding = character.bindings.get()
    assert binding.status == BindingStatus.FAILED and "two different addresses" in binding.error
    assert listener.quiet()
