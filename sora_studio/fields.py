"""An encrypted text field on `cryptography`'s MultiFernet.

Why not django-fernet-encrypted-fields: with the wrong key it silently returns the ciphertext, and
the app would then send `gAAAA…` to a provider as a bearer token. This field fails loudly instead.
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with the configured ENCRYPTION_KEYS."""


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = base64.urlsafe_b64encode(hashlib.sha256(f"sora-studio:{secret_key}".encode()).digest())
        keys = (derived.decode(),)
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored API key cannot be decrypted: ENCRYPTION_KEYS (or SECRET_KEY) changed since it was saved. "
            "Restore the old key, or add it after the new one in ENCRYPTION_KEYS, or re-enter the API key."
        ) from exc


class Sealed:
    """Ciphertext as loaded from the database; `reveal()` decrypts it, and only then can it fail.

    Loading stays cheap and safe (the admin can list backends whose key no longer decrypts), and the
    plaintext never sits in a repr, a log line or a traceback.
    """

    __slots__ = ("token",)

    def __init__(self, token: str):
        self.token = token

    def reveal(self) -> str:
        return decrypt(self.token)

    def __repr__(self) -> str:
        return "Sealed('********')"

    __str__ = __repr__

    def __eq__(self, other):
        return isinstance(other, Sealed) and other.token == self.token

    def __hash__(self):
        return hash(self.token)


def reveal(value) -> str:
    """The plaintext of a field value: a Sealed token from the database or a str just assigned."""
    if isinstance(value, Sealed):
        return value.reveal()
    return value or ""


class EncryptedTextField(models.TextField):
    """Stores Fernet ciphertext; loads as `Sealed`; accepts a plain str on assignment."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return Sealed(value)

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        if value is None or value == "":
            return value
        if isinstance(value, Sealed):
            return value.token
        return encrypt(str(value))
