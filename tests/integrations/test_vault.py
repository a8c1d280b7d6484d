from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from integrations.vault import VaultError, mask, vault_decrypt, vault_encrypt, vault_rotate


def test_round_trip_and_ciphertext_hides_the_secret():
    token = vault_encrypt("sk-live-secret-value")

    assert "secret" not in token
    assert vault_decrypt(token) == "sk-live-secret-value"


def test_rotation_keeps_old_tokens_readable_and_moves_them_to_the_new_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old]
    token = vault_encrypt("s3cret")

    settings.FERNET_KEYS = [new, old]
    assert vault_decrypt(token) == "s3cret"
    rotated = vault_rotate(token)

    settings.FERNET_KEYS = [new]
    assert vault_decrypt(rotated) == "s3cret"
    with pytest.raises(VaultError):
        vault_decrypt(token)


def test_mask_shows_only_a_hint():
    assert mask("sk-abcdefghijklmnop") == "sk-…mnop"
    assert mask("short") == "••••••••"
    assert mask("") == ""
