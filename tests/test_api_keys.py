"""API keys are encrypted at rest, fail loudly with the wrong key, and never print themselves."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from generations.providers.models import Backend
from sora_studio.fields import DecryptionError, Sealed
from tests.factories import make_dead_backend

pytestmark = pytest.mark.django_db


def make(**extra):
    return make_dead_backend("B", api_key="sk-live-secret", prices=False, **extra)


def test_the_key_is_stored_encrypted_and_read_back():
    backend = make()
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM generations_backend WHERE id = %s", [backend.pk])
        stored = cursor.fetchone()[0]
    assert "sk-live-secret" not in stored and stored.startswith("gAAAA")
    assert Backend.objects.get(pk=backend.pk).key == "sk-live-secret"


def test_a_loaded_key_does_not_show_itself():
    loaded = Backend.objects.get(pk=make().pk)
    assert isinstance(loaded.api_key, Sealed)
    assert "sk-live-secret" not in repr(loaded.api_key) and "sk-live-secret" not in str(loaded.api_key)


def test_with_the_wrong_encryption_key_it_fails_loudly_instead_of_sending_ciphertext(settings):
    backend = make()
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    loaded = Backend.objects.get(pk=backend.pk)  # loading and listing still work (the admin)
    with pytest.raises(DecryptionError, match="ENCRYPTION_KEYS"):
        _ = loaded.key


def test_keys_can_be_rotated(settings):
    old = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    backend = make()
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old]
    assert Backend.objects.get(pk=backend.pk).key == "sk-live-secret"


def test_saving_again_does_not_encrypt_twice():
    backend = Backend.objects.get(pk=make().pk)
    backend.enabled = False
    backend.save()
    assert Backend.objects.get(pk=backend.pk).key == "sk-live-secret"


@pytest.mark.django_db(transaction=True)
def test_a_job_on_a_backend_whose_key_cannot_be_read_fails_with_that_reason(alice, official, settings):
    from generations.jobs import lifecycle
    from generations.jobs.lifecycle import GenerationRequest
    from tests.conftest import drive

    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    generation = drive(
        lifecycle.start(
            GenerationRequest(alice, prompt="x", model="sora-2", seconds=4, size="720x1280", backend=official)
        ).generation
    )
    assert generation.status == "failed" and generation.error_code == "api_key_unreadable"
    assert "ENCRYPTION_KEYS" in generation.error_message
