"""A character's stills (frames of its clip) and the clip cut to the length a protocol registers from."""

import imageio_ffmpeg
import pytest

from characters import clips, stills
from characters.models import StillSource
from simulator.render import look_for, render_mp4
from tests.factories import make_character

pytestmark = pytest.mark.django_db


@pytest.fixture
def character(alice):
    return make_character(alice, "mossy", clip=render_mp4(look_for("a mossy robot", "1280x720", "clip"), 6))


def test_three_stills_are_taken_from_the_clip_once(character):
    assert stills.take_from_clip(character) == 3
    assert stills.take_from_clip(character) == 3  # again: nothing new
    taken = list(character.stills.all())
    assert [s.position for s in taken] == [1, 2, 3] and {s.source for s in taken} == {StillSource.CLIP}
    for still in taken:
        with still.image.open("rb") as image:
            assert image.read(3) == b"\xff\xd8\xff"  # a JPEG


def test_an_uploaded_still_replaces_the_one_in_its_place(character):
    stills.take_from_clip(character)
    stills.replace(character, 2, stills.frame_at(character.source_clip.path, 0.5))
    assert character.stills.get(position=2).source == StillSource.UPLOAD
    assert character.stills.count() == 3


def test_a_character_without_a_clip_has_no_stills(alice):
    assert stills.take_from_clip(make_character(alice, "nobody")) == 0


def test_reference_images_share_the_limit_among_the_characters(character, alice):
    other = make_character(alice, "rex", clip=render_mp4(look_for("a dog", "1280x720", "clip"), 4))
    stills.take_from_clip(character)
    stills.take_from_clip(other)
    images = stills.reference_images([character, other], 3)
    assert [image.name for image in images] == ["mossy-1.jpg", "rex-1.jpg", "mossy-2.jpg"]
    assert all(image.content.startswith(b"\xff\xd8") and image.content_type == "image/jpeg" for image in images)


def test_a_clip_longer_than_the_protocol_takes_is_cut(character, tmp_path):
    with clips.for_registration(character.source_clip, (2, 4)) as clip:
        target = tmp_path / "cut.mp4"
        target.write_bytes(clip.read())
    _frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(target))
    assert 3.5 <= seconds <= 4.2
    with clips.for_registration(character.source_clip, None) as clip:
        assert clip.read() == character.source_clip.open("rb").read()


def test_the_character_page_shows_the_stills_and_how_it_travels(client, character, official):
    stills.take_from_clip(character)
    client.force_login(character.owner)
    page = client.get(f"/characters/{character.pk}/").content.decode()
    assert page.count('alt="Still ') == 3 and "How it travels" in page
    assert "as its id, once registered" in page  # the OpenAI shape registers characters
    image = client.get(f"/characters/{character.pk}/stills/2.jpg")
    assert image.status_code == 200 and b"".join(image.streaming_content).startswith(b"\xff\xd8")


def test_an_uploaded_still_is_decoded_and_kept_and_junk_is_refused(client, character):
    client.force_login(character.owner)
    from io import BytesIO

    from PIL import Image

    png = BytesIO()
    Image.new("RGB", (64, 48), "red").save(png, format="PNG")
    png.seek(0)
    png.name = "red.png"
    client.post(f"/characters/{character.pk}/stills/", {"position": "1", "image": png})
    kept = character.stills.get(position=1)
    assert kept.source == StillSource.UPLOAD and kept.image.open("rb").read(3) == b"\xff\xd8\xff"
    junk = BytesIO(b"<svg onload=alert(1)>")
    junk.name = "x.png"
    response = client.post(f"/characters/{character.pk}/stills/", {"position": "2", "image": junk}, follow=True)
    assert "not an image that can be read" in response.content.decode()
    assert not character.stills.filter(position=2).exists()


def test_another_creators_stills_are_404(client, character, bob):
    stills.take_from_clip(character)
    client.force_login(bob)
    assert client.get(f"/characters/{character.pk}/stills/1.jpg").status_code == 404
    assert client.post(f"/characters/{character.pk}/stills/", {"position": "1"}).status_code == 404
