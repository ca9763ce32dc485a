"""Secrets at rest: MultiFernet over FIELD_ENCRYPTION_KEYS, loud on a wrong or missing key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from gateway import crypto

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def test_encrypted_secret_is_not_the_plaintext_and_decrypts_back(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    token = crypto.encrypt("whsec_top-secret")
    assert "top-secret" not in token
    assert crypto.decrypt(token) == "whsec_top-secret"


def test_every_key_decrypts_and_the_first_encrypts(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    old_token = crypto.encrypt("s1")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert crypto.decrypt(old_token) == "s1"
    new_token = crypto.encrypt("s2")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert crypto.decrypt(new_token) == "s2"


def test_reencrypt_makes_the_old_key_unnecessary(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    token = crypto.encrypt("s1")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    rotated = crypto.reencrypt(token)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert crypto.decrypt(rotated) == "s1"
    with pytest.raises(crypto.SecretDecryptionError):
        crypto.decrypt(token)


def test_a_wrong_key_is_a_clear_error_naming_the_secret_and_not_quoting_it(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    token = crypto.encrypt("s1")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(crypto.SecretDecryptionError) as caught:
        crypto.decrypt(token, what="MTN account ug collection api_key")
    message = str(caught.value)
    assert "MTN account ug collection api_key" in message
    assert "FIELD_ENCRYPTION_KEYS" in message
    assert token not in message
    assert NEW_KEY not in message


def test_no_key_at_all_is_a_configuration_error(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(crypto.EncryptionKeyError, match="FIELD_ENCRYPTION_KEYS is empty"):
        crypto.encrypt("s1")


def test_a_malformed_key_is_named_by_position_never_quoted(settings):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, "not-a-fernet-key"]
    with pytest.raises(crypto.EncryptionKeyError, match="key number 2") as caught:
        crypto.encrypt("s1")
    assert "not-a-fernet-key" not in str(caught.value)


def test_sealed_value_shows_nothing_in_its_repr():
    assert "gAAAA" not in repr(crypto.Sealed("gAAAAsecret"))


def test_system_check_refuses_a_malformed_key(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["short"]
    (error,) = crypto.check_encryption_keys()
    assert error.id == "gateway.E101"
    assert "short" not in error.msg
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert crypto.check_encryption_keys() == []
