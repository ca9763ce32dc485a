"""Secrets stored in the database, encrypted with the keys of ``FIELD_ENCRYPTION_KEYS``.

``cryptography``'s MultiFernet: the first key encrypts, every key decrypts, and
``rotate_encryption_key`` re-encrypts with the first. A stored secret that no configured key
opens is a loud :class:`SecretDecryptionError`; the ciphertext is never handed on as if it
were the secret (the failure mode of django-fernet-encrypted-fields, which returns the stored
text unchanged when decryption fails). Neither keys nor secrets ever appear in a message.

:class:`EncryptedTextField` keeps the column encrypted and decrypts lazily, on first access to
the attribute: loading a tenant to authenticate a request does not decrypt its webhook secret,
and a wrong key breaks only what actually needs the secret, loudly.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models.query_utils import DeferredAttribute


class EncryptionKeyError(ImproperlyConfigured):
    """``FIELD_ENCRYPTION_KEYS`` is empty or holds something that is not a Fernet key."""


class SecretDecryptionError(Exception):
    """A stored secret cannot be opened with any key in ``FIELD_ENCRYPTION_KEYS``."""


@functools.lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise EncryptionKeyError(
            "FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key to store or read "
            'secrets (generate one with `python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`).'
        )
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError) as exc:
            # The key itself is never quoted: it is a secret.
            raise EncryptionKeyError(
                f"FIELD_ENCRYPTION_KEYS: key number {position} is not a Fernet key "
                "(32 bytes, url-safe base64-encoded)."
            ) from exc
    return MultiFernet(fernets)


def keys() -> MultiFernet:
    """The configured keys; raises :class:`EncryptionKeyError` when they are unusable."""
    return _multi_fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


@checks.register(checks.Tags.security)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``manage.py check`` (and migrate, runserver) refuse unusable FIELD_ENCRYPTION_KEYS."""
    try:
        keys()
    except EncryptionKeyError as exc:
        return [checks.Error(str(exc), id="gateway.E101")]
    return []


def encrypt(plaintext: str) -> str:
    """``plaintext`` encrypted with the first key, as a Fernet token (ASCII)."""
    return keys().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str, *, what: str = "a stored secret") -> str:
    """The plaintext of a token made by :func:`encrypt` with any configured key.

    Raises :class:`SecretDecryptionError` naming ``what`` (never the token) when no key opens it.
    """
    try:
        return keys().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise SecretDecryptionError(
            f"{what} cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS: the key it was "
            "encrypted with is missing (dropped before `manage.py rotate_encryption_key` ran?) "
            "or the keys are wrong."
        ) from exc


def reencrypt(token: str, *, what: str = "a stored secret") -> str:
    """The same secret encrypted with the first key (MultiFernet.rotate)."""
    try:
        return keys().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise SecretDecryptionError(
            f"{what} cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS, so it cannot be "
            "re-encrypted; put back the key it was encrypted with and run the rotation again."
        ) from exc


class Sealed:
    """A ciphertext as read from the database, not opened yet. Its repr shows nothing."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return "<Sealed secret>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


class _DecryptingAttribute(DeferredAttribute):
    """Reads give the plaintext (decrypted once, on first read); writes take plaintext."""

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            what = f"{type(instance).__name__}.{self.field.name} of {instance.pk}"
            value = decrypt(value.token, what=what)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A text secret, stored as a Fernet token; the Python value is the plaintext.

    An empty string is stored as an empty string: "no secret" is not a secret. Only
    ``isnull`` and ``exact`` lookups exist, and ``exact`` is meaningful only against ``""``:
    each encryption of the same secret differs, so a secret can never be searched for.
    """

    descriptor_class = _DecryptingAttribute

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return Sealed(value)

    def to_python(self, value: Any) -> Any:
        return value

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        # Straight from the instance's dict, so that saving a row whose secret was never read
        # keeps its ciphertext as it is instead of decrypting it first.
        return model_instance.__dict__.get(self.attname)

    def get_prep_value(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        if isinstance(value, Sealed):
            return value.token
        if not isinstance(value, str):
            raise TypeError(f"{self.name} takes a str secret, not {type(value).__name__}")
        return encrypt(value)

    def value_to_string(self, obj: Any) -> str:
        # dumpdata and friends get the ciphertext, never the secret.
        value = obj.__dict__.get(self.attname)
        if isinstance(value, Sealed):
            return value.token
        return self.get_prep_value(value) or ""

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name not in ("isnull", "exact"):
            return None
        return super().get_lookup(lookup_name)


def reencrypt_all() -> dict[str, int]:
    """Re-encrypt every stored secret, of every model, with the first key.

    One transaction: each row is locked, its ciphertexts are rotated without being kept as
    Python strings, and written back. Returns the rows changed per model label. Raises
    :class:`SecretDecryptionError` (and changes nothing) when a secret opens with no key.
    """
    changed: dict[str, int] = {}
    with transaction.atomic():
        for model in apps.get_models():
            fields = [
                field.attname
                for field in model._meta.concrete_fields
                if isinstance(field, EncryptedTextField)
            ]
            if not fields:
                continue
            count = 0
            for row in model._default_manager.select_for_update().only("pk", *fields):
                updates = {}
                for attname in fields:
                    stored = row.__dict__.get(attname)
                    if isinstance(stored, Sealed):
                        what = f"{model.__name__}.{attname} of {row.pk}"
                        updates[attname] = Sealed(reencrypt(stored.token, what=what))
                if updates:
                    model._default_manager.filter(pk=row.pk).update(**updates)
                    count += 1
            changed[model._meta.label] = count
    return changed
