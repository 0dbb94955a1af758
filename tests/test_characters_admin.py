"""The admin can make missing avatars from stored clips in bulk (characters made before avatars existed)."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from characters.models import Character
from simulator.render import look_for, render_mp4

pytestmark = pytest.mark.django_db


def test_the_admin_makes_missing_avatars_from_stored_clips(client, django_user_model, alice):
    with_clip = Character(owner=alice, name="Rex", handle="rex")
    with_clip.source_clip.save("clip.mp4", ContentFile(render_mp4(look_for("x", "1280x720", "clip"), 2)), save=False)
    with_clip.save()
    without_clip = Character.objects.create(owner=alice, name="Pip", handle="pip")
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))

    response = client.post(reverse("admin:characters_character_changelist"), {
        "action": "make_avatars", "_selected_action": [with_clip.pk, without_clip.pk]}, follow=True)

    assert "1 avatar made." in response.text
    with_clip.refresh_from_db()
    without_clip.refresh_from_db()
    assert with_clip.avatar.read(3) == b"\xff\xd8\xff" and not without_clip.avatar
