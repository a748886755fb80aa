"""The secret box: AES-256-GCM under rotating keys, each blob bound to its context."""

from __future__ import annotations

import pytest

from doorward.core.secret_box import SecretBox, SecretUndecryptable

OLD = b"an old key of at least thirty-two characters"
NEW = b"a new key, also of thirty-two characters or more"


def test_a_blob_opens_under_its_context_only() -> None:
    box = SecretBox([NEW])
    blob = box.encrypt(b"JBSWY3DPEHPK3PXP", b"totp:1")
    assert b"JBSWY3DPEHPK3PXP" not in blob
    assert box.decrypt(blob, b"totp:1") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretUndecryptable):
        box.decrypt(blob, b"totp:2")  # copied onto another account's row


def test_each_encryption_is_fresh() -> None:
    box = SecretBox([NEW])
    assert box.encrypt(b"same", b"c") != box.encrypt(b"same", b"c")


def test_rotation_the_first_key_encrypts_every_key_decrypts() -> None:
    old_blob = SecretBox([OLD]).encrypt(b"secret", b"c")
    rotated = SecretBox([NEW, OLD])
    assert rotated.decrypt(old_blob, b"c") == b"secret"
    assert not rotated.is_current(old_blob)
    new_blob = rotated.encrypt(b"secret", b"c")
    assert rotated.is_current(new_blob)
    assert SecretBox([NEW]).decrypt(new_blob, b"c") == b"secret"
    with pytest.raises(SecretUndecryptable, match="key"):
        SecretBox([OLD]).decrypt(new_blob, b"c")


def test_an_unknown_key_is_refused() -> None:
    blob = SecretBox([OLD]).encrypt(b"secret", b"c")
    with pytest.raises(SecretUndecryptable, match="does not hold"):
        SecretBox([NEW]).decrypt(blob, b"c")


@pytest.mark.parametrize("damage", ["flip", "truncate", "version", "empty"])
def test_an_altered_blob_is_refused(damage: str) -> None:
    box = SecretBox([NEW])
    blob = bytearray(box.encrypt(b"secret", b"c"))
    if damage == "flip":
        blob[-1] ^= 1
    elif damage == "truncate":
        del blob[20:]
    elif damage == "version":
        blob[0] = 2
    else:
        blob.clear()
    with pytest.raises(SecretUndecryptable):
        box.decrypt(bytes(blob), b"c")


def test_the_keys_never_show() -> None:
    box = SecretBox([NEW, OLD])
    assert repr(box) == "SecretBox(<2 key(s)>)"
    with pytest.raises(ValueError, match="at least one key"):
        SecretBox([])
