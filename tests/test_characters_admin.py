"""The admin can make missing avatars from stored clips in bulk (characters made before avatars existed)."""

import pytest
from django.urls import reverse

from simulator.render import look_for, render_mp4
from tests.factories import make_character, make_user

pytestmark = pytest.mark.django_db


def test_the_admin_makes_missing_avatars_from_stored_clips(client, alice):
    with_clip = make_character(alice, "rex", clip=render_mp4(look_for("x", "1280x720", "clip"), 2))
    without_clip = make_character(alice, "pip")
    client.force_login(make_user("root", is_staff=True, is_superuser=True))

    response = client.post(
        reverse("admin:characters_character_changelist"),
        {"action": "make_avatars", "_selected_action": [with_clip.pk, without_clip.pk]},
        follow=True,
    )

    assert "1 avatar made." in response.text
    with_clip.refresh_from_db()
    without_clip.refresh_from_db()
    assert with_clip.avatar.read(3) == b"\xff\xd8\xff" and not without_clip.avatar
