"""The server fetches creator-given clip URLs only from the public internet (no SSRF)."""

import pytest

from characters import registry
from characters.forms import CharacterForm
from characters.models import BindingStatus, Character
from sora_studio import netguard


@pytest.fixture
def production(settings):
    settings.ALLOW_PRIVATE_FETCH = False


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/admin/", "http://localhost/", "http://[::1]/x.mp4", "http://10.0.0.5/clip.mp4",
    "http://192.168.1.1/clip.mp4", "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/",
    "file:///etc/passwd", "ftp://example.com/clip.mp4", "gopher://127.0.0.1/",
])
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
    form = CharacterForm(data={"name": "Rex", "handle": "rex", "video_url": "http://127.0.0.1:5432/"},
                         owner=alice)
    assert not form.is_valid()
    assert "private network" in str(form.errors["video_url"])


@pytest.mark.django_db
def test_a_worker_never_fetches_a_private_link(production, alice, backend):
    character = Character.objects.create(owner=alice, name="Rex", handle="rex",
                                         source_url="http://169.254.169.254/latest/meta-data/")
    registry.bind(character, backend)
    registry.register(character.bindings.get().pk)
    binding = character.bindings.get()
    assert binding.status == BindingStatus.FAILED and "private network" in binding.error
