"""Credentials at rest: MultiFernet over a key ring from settings, so keys can be rotated.

`FERNET_KEYS` lists keys newest first; encryption uses the first, decryption tries them all, and
`vault_rotate` re-encrypts a token under the newest key. Without FERNET_KEYS (dev and tests only)
one key is derived from SECRET_KEY. Values are masked in every UI and API response with `mask`.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class VaultError(Exception):
    pass


@lru_cache(maxsize=4)
def _ring(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FERNET_KEYS must be set when DEBUG is off")
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _keys() -> tuple[str, ...]:
    keys = tuple(settings.FERNET_KEYS)
    if not keys and (settings.DEBUG or settings.TESTING):
        derived = base64.urlsafe_b64encode(
            hashlib.sha256(("fernet:" + settings.SECRET_KEY).encode()).digest()
        )
        keys = (derived.decode(),)
    return keys


def vault_encrypt(plaintext: str) -> str:
    return _ring(_keys()).encrypt(plaintext.encode()).decode()


def vault_decrypt(token: str) -> str:
    try:
        return _ring(_keys()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise VaultError("The stored credential cannot be decrypted with the configured keys.")


def vault_rotate(token: str) -> str:
    return _ring(_keys()).rotate(token.encode()).decode()


def mask(secret: str, visible: int = 4) -> str:
    """`sk-…abcd`: enough to recognise a credential, never enough to use it."""
    if not secret:
        return ""
    if len(secret) <= visible * 2:
        return "•" * 8
    return f"{secret[:3]}…{secret[-visible:]}"
