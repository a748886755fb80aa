"""The WebAuthn ceremonies against fixed, recorded vectors (issue 20, "Tests"): answers real
authenticators once gave, fed byte for byte through doorward's RelyingParty the way core/passkeys.py,
passkey_login.py and second_step.py call it (read, then verify against the stored challenge; the sign
count judged by ``sign_count_regressed``). The software authenticator of test_passkeys.py makes fresh
credentials at every run; these never change, so a py_webauthn upgrade that reads them differently
shows here.

Source of every vector below: the repository duo-labs/py_webauthn, recorded test data (not generated
here) from
- tests/test_verify_registration_response.py, test_verifies_none_attestation_response ('none');
- tests/test_verify_registration_response_packed.py, test_verify_attestation_from_yubikey_firefox
  (a YubiKey in Firefox, 'packed' with an x5c certificate: its signature covers clientDataJSON);
- tests/test_verify_authentication_response.py, test_verify_authentication_response_with_EC2_public_key,
  ..._with_RSA_public_key and ..._with_OKP_public_key (each with the public key and sign count its test
  stores; none of them is a login with a credential registered above: py_webauthn records no such pair).
All were made for the RP ID "localhost" and the origin "http://localhost:5000"."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from webauthn.helpers import encode_cbor, parse_cbor

from doorward.core.models import Passkey
from doorward.core.relying_party import (
    CeremonyFailed,
    Registration,
    RelyingParty,
    sign_count_regressed,
)
from tests.authenticator import b64url, unb64url

RP_ID = "localhost"
ORIGIN = "http://localhost:5000"
RP = RelyingParty(RP_ID, (ORIGIN,))
NO_AAGUID = "00000000-0000-0000-0000-000000000000"

# --- recorded registrations -------------------------------------------------------------------------

# py_webauthn tests/test_verify_registration_response.py, test_verifies_none_attestation_response.
NONE_REGISTRATION: dict[str, Any] = {
    "id": "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w",
    "rawId": "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w",
    "response": {
        "attestationObject": (
            "o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVjESZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2NFAAAAFwAAAAAAAAAA"
            "AAAAAAAAAAAAQPctcQPE5oNRRJk_nO_371mf7qE7qIodzr0eOf6ACvnMB1oQG165dqutoi1U44shGezu5_gkTjmOPeJO0N8a7P-l"
            "AQIDJiABIVggSFbUJF-42Ug3pdM8rDRFu_N5oiVEysPDB6n66r_7dZAiWCDUVnB39FlGypL-qAoIO9xWHtJygo2jfDmHl-_eKFRL"
            "DA"
        ),
        "clientDataJSON": (
            "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiVHdON240V1R5R0tMYzRaWS1xR3NGcUtuSE00bmdscXN5VjBJ"
            "Q0psTjJUTzlYaVJ5RnRya2FEd1V2c3FsLWdrTEpYUDZmbkYxTWxyWjUzTW00UjdDdnciLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxo"
            "b3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9"
        ),
    },
    "type": "public-key",
    "clientExtensionResults": {},
    "transports": ["nfc", "usb"],
}
NONE_CHALLENGE = unb64url(
    "TwN7n4WTyGKLc4ZY-qGsFqKnHM4nglqsyV0ICJlN2TO9XiRyFtrkaDwUvsql-gkLJXP6fnF1MlrZ53Mm4R7Cvw"
)
NONE_CREDENTIAL_ID = unb64url(NONE_REGISTRATION["rawId"])
NONE_PUBLIC_KEY = unb64url(
    "pQECAyYgASFYIEhW1CRfuNlIN6XTPKw0RbvzeaIlRMrDwwep-uq_-3WQIlgg1FZwd_RZRsqS_qgKCDvcVh7ScoKNo3w5h5fv3ihUSww"
)

# py_webauthn tests/test_verify_registration_response_packed.py, test_verify_attestation_from_yubikey_firefox.
PACKED_REGISTRATION: dict[str, Any] = {
    "id": "syGQPDZRUYdb4m3rdWeyPaIMYlbmydGp1TP_33vE_lqJ3PHNyTd0iKsnKr5WjnCcBzcesZrDEfB_RBLFzU3k4w",
    "rawId": "syGQPDZRUYdb4m3rdWeyPaIMYlbmydGp1TP_33vE_lqJ3PHNyTd0iKsnKr5WjnCcBzcesZrDEfB_RBLFzU3k4w",
    "response": {
        "attestationObject": (
            "o2NmbXRmcGFja2VkZ2F0dFN0bXSjY2FsZyZjc2lnWEcwRQIhAOfrFlQpbavT6dJeTDJSCDzYSYPjBDHli2-syT2c1IiKAiAx5gQ2"
            "z5cHjdQX-jEHTb7JcjfQoVSW8fXszF5ihSgeOGN4NWOBWQLBMIICvTCCAaWgAwIBAgIEKudiYzANBgkqhkiG9w0BAQsFADAuMSww"
            "KgYDVQQDEyNZdWJpY28gVTJGIFJvb3QgQ0EgU2VyaWFsIDQ1NzIwMDYzMTAgFw0xNDA4MDEwMDAwMDBaGA8yMDUwMDkwNDAwMDAw"
            "MFowbjELMAkGA1UEBhMCU0UxEjAQBgNVBAoMCVl1YmljbyBBQjEiMCAGA1UECwwZQXV0aGVudGljYXRvciBBdHRlc3RhdGlvbjEn"
            "MCUGA1UEAwweWXViaWNvIFUyRiBFRSBTZXJpYWwgNzE5ODA3MDc1MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKgOGXmBD2Z4R"
            "_xCqJVRXhL8Jr45rHjsyFykhb1USGozZENOZ3cdovf5Ke8fj2rxi5tJGn_VnW4_6iQzKdIaeP6NsMGowIgYJKwYBBAGCxAoCBBUx"
            "LjMuNi4xLjQuMS40MTQ4Mi4xLjEwEwYLKwYBBAGC5RwCAQEEBAMCBDAwIQYLKwYBBAGC5RwBAQQEEgQQbUS6m_bsLkm5MAyP6SDL"
            "czAMBgNVHRMBAf8EAjAAMA0GCSqGSIb3DQEBCwUAA4IBAQByV9A83MPhFWmEkNb4DvlbUwcjc9nmRzJjKxHc3HeK7GvVkm0H4Xuc"
            "VDB4jeMvTke0WHb_jFUiApvpOHh5VyMx5ydwFoKKcRs5x0_WwSWL0eTZ5WbVcHkDR9pSNcA_D_5AsUKOBcbpF5nkdVRxaQHuuIuw"
            "V4k1iK2IqtMNcU8vL6w21U261xCcWwJ6sMq4zzVO8QCKCQhsoIaWrwz828GDmPzfAjFsJiLJXuYivdHACkeJ5KHMt0mjVLpfJ2BC"
            "ML7_rgbmvwL7wBW80VHfNdcKmKjkLcpEiPzwcQQhiN_qHV90t-p4iyr5xRSpurlP5zic2hlRkLKxMH2_kRjhqSn4aGF1dGhEYXRh"
            "WMRJlg3liA6MaHQ0Fw9kdmBbj-SuuaKGMseZXPO6gx2XY0UAAAA0bUS6m_bsLkm5MAyP6SDLcwBAsyGQPDZRUYdb4m3rdWeyPaIM"
            "YlbmydGp1TP_33vE_lqJ3PHNyTd0iKsnKr5WjnCcBzcesZrDEfB_RBLFzU3k46UBAgMmIAEhWCBAX_i3O3DvBnkGq_uLNk_PeAX5"
            "WwO_MIxBp0mhX6Lw7yJYIOW-1-Fch829McWvRUYAHTWZTx5IycKSGECL1UzUaK_8"
        ),
        "clientDataJSON": (
            "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiOExCQ2lPWTNxMWNCWkhGQVd0UzRBWlpDaHpHcGh5NjdsSzdJ"
            "NzB6S2k0eUM3cGdyUTJQY2g3bkFqTGsxd3E5Z3Jlc2hJQXNXMkFqaWJoWGpqSTBUbVEiLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxo"
            "b3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9"
        ),
    },
    "type": "public-key",
    "clientExtensionResults": {},
    "transports": ["nfc", "usb"],
}
PACKED_CHALLENGE = unb64url(
    "8LBCiOY3q1cBZHFAWtS4AZZChzGphy67lK7I70zKi4yC7pgrQ2Pch7nAjLk1wq9greshIAsW2AjibhXjjI0TmQ"
)

# --- recorded authentications ---------------------------------------------------------------------

# py_webauthn tests/test_verify_authentication_response.py,
# test_verify_authentication_response_with_EC2_public_key.
EC2_ASSERTION: dict[str, Any] = {
    "id": "EDx9FfAbp4obx6oll2oC4-CZuDidRVV4gZhxC529ytlnqHyqCStDUwfNdm1SNHAe3X5KvueWQdAX3x9R1a2b9Q",
    "rawId": "EDx9FfAbp4obx6oll2oC4-CZuDidRVV4gZhxC529ytlnqHyqCStDUwfNdm1SNHAe3X5KvueWQdAX3x9R1a2b9Q",
    "response": {
        "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MBAAAATg",
        "clientDataJSON": (
            "eyJjaGFsbGVuZ2UiOiJ4aTMwR1BHQUZZUnhWRHBZMXNNMTBEYUx6VlFHNjZudi1fN1JVYXpIMHZJMll2RzhMWWdERW52TjVmWlpO"
            "VnV2RUR1TWk5dGUzVkxxYjQyTjBma0xHQSIsImNsaWVudEV4dGVuc2lvbnMiOnt9LCJoYXNoQWxnb3JpdGhtIjoiU0hBLTI1NiIs"
            "Im9yaWdpbiI6Imh0dHA6Ly9sb2NhbGhvc3Q6NTAwMCIsInR5cGUiOiJ3ZWJhdXRobi5nZXQifQ"
        ),
        "signature": (
            "MEUCIGisVZOBapCWbnJJvjelIzwpixxIwkjCCb5aCHafQu68AiEA88v-2pJNNApPFwAKFiNuf82-2hBxYW5kGwVweeoxCwo"
        ),
    },
    "type": "public-key",
    "clientExtensionResults": {},
}
EC2_CHALLENGE = unb64url(
    "xi30GPGAFYRxVDpY1sM10DaLzVQG66nv-_7RUazH0vI2YvG8LYgDEnvN5fZZNVuvEDuMi9te3VLqb42N0fkLGA"
)
EC2_PUBLIC_KEY = unb64url(
    "pQECAyYgASFYIIeDTe-gN8A-zQclHoRnGFWN8ehM1b7yAsa8I8KIvmplIlgg4nFGT5px8o6gpPZZhO01wdy9crDSA_Ngtkx0vGpvPHI"
)
EC2_STORED_COUNT = 77  # the count its test stores; the assertion says 78

# Same file, test_verify_authentication_response_with_RSA_public_key (RS256, user verified, a user handle).
RSA_ASSERTION: dict[str, Any] = {
    "id": "ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s",
    "rawId": "ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s",
    "response": {
        "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
        "clientDataJSON": (
            "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiaVBtQWkxUHAxWEw2b0FncTNQV1p0WlBuWmExekZVRG9HYmFRMF9L"
            "dlZHMWxGMnMzUnRfM280dVN6Y2N5MHRtY1RJcFRUVDRCVTFULUk0bWFhdm5kalEiLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0"
            "OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9"
        ),
        "signature": (
            "iOHKX3erU5_OYP_r_9HLZ-CexCE4bQRrxM8WmuoKTDdhAnZSeTP0sjECjvjfeS8MJzN1ArmvV0H0C3yy_FdRFfcpUPZzdZ7bBcmP"
            "h1XPdxRwY747OrIzcTLTFQUPdn1U-izCZtP_78VGw9pCpdMsv4CUzZdJbEcRtQuRS03qUjqDaovoJhOqEBmxJn9Wu8tBi_Qx7A33"
            "RbYjlfyLm_EDqimzDZhyietyop6XUcpKarKqVH0M6mMrM5zTjp8xf3W7odFCadXEJg-ERZqFM0-9Uup6kJNLbr6C5J4NDYmSm3HC"
            "SA6lp2iEiMPKU8Ii7QZ61kybXLxsX4w4Dm3fOLjmDw"
        ),
        "userHandle": "T1RWa1l6VXdPRFV0WW1NNVlTMDBOVEkxTFRnd056Z3RabVZpWVdZNFpEVm1ZMk5p",
    },
    "type": "public-key",
    "clientExtensionResults": {},
}
RSA_PUBLIC_KEY = unb64url(
    "pAEDAzkBACBZAQDfV20epzvQP-HtcdDpX-cGzdOxy73WQEvsU7Dnr9UWJophEfpngouvgnRLXaEUn_d8HGkp_HIx8rrpkx4BVs6X_B6Z"
    "jhLlezjIdJbLbVeb92BaEsmNn1HW2N9Xj2QM8cH-yx28_vCjf82ahQ9gyAr552Bn96G22n8jqFRQKdVpO-f-bvpvaP3IQ9F5LCX7CUax"
    "ptgbog1SFO6FI6ob5SlVVB00lVXsaYg8cIDZxCkkENkGiFPgwEaZ7995SCbiyCpUJbMqToLMgojPkAhWeyktu7TlK6UBWdJMHc3FPAIs"
    "0lH_2_2hKS-mGI1uZAFVAfW1X-mzKL0czUm2P1UlUox7IUMBAAE"
)

# Same file, test_verify_authentication_response_with_OKP_public_key (EdDSA).
OKP_ASSERTION: dict[str, Any] = {
    "id": (
        "fq9Nj0nS24B5y6Pkw_h3-9GEAEA3-0LBPxE2zvTdLjDqtSeCSNYFe9VMRueSpAZxT3YDc6L1lWXdQNwI-sVNYrefEcRR1Nsb_0jpHE95"
        "5WEtFud2xxZg3MvoLMxHLet63i5tajd1fHtP7I-00D6cehM8ZWlLp2T3s9lfZgVIFcA"
    ),
    "rawId": (
        "fq9Nj0nS24B5y6Pkw_h3-9GEAEA3-0LBPxE2zvTdLjDqtSeCSNYFe9VMRueSpAZxT3YDc6L1lWXdQNwI-sVNYrefEcRR1Nsb_0jpHE95"
        "5WEtFud2xxZg3MvoLMxHLet63i5tajd1fHtP7I-00D6cehM8ZWlLp2T3s9lfZgVIFcA"
    ),
    "response": {
        "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MBAAAABw",
        "clientDataJSON": (
            "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiZVo0ZWVBM080ank1Rkl6cURhU0o2SkROR3UwYkJjNXpJMURqUV9r"
            "THNvMVdOcWtHNms1bUNZZjFkdFFoVlVpQldaV2xaa3pSNU1GZWVXQ3BKUlVOWHciLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0"
            "OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9"
        ),
        "signature": "RRWV8mYDRvK7YdQgdtZD4pJ2dh1D_IWZ_D6jsZo6FHJBoenbj0CVT5nA20vUzlRhN4R6dOEUHmUwP1F8eRBhBg",
    },
    "type": "public-key",
    "clientExtensionResults": {},
}
OKP_PUBLIC_KEY = unb64url("pAEBAycgBiFYIMz6_SUFLiDid2Yhlq0YboyJ-CDrIrNpkPUGmJp4D3Dp")

# --- how core/passkeys.py and passkey_login.py call the relying party --------------------------------


def register(credential: dict[str, Any], challenge: bytes, rp: RelyingParty = RP) -> Registration:
    """Read the response, then verify it against the stored challenge (``challenge``: the core finds
    the stored one by the digest of the one in clientDataJSON; a test may name another)."""
    parsed, _ = rp.read_registration(credential)
    return rp.verify_registration(parsed, challenge)


def stored(credential_id: bytes, public_key: bytes, sign_count: int) -> Passkey:
    return Passkey(
        id="pk_vector",
        user_id=1,
        credential_id=credential_id,
        public_key=public_key,
        sign_count=sign_count,
        transports=(),
        aaguid=NO_AAGUID,
        backup_eligible=False,
        backed_up=False,
        user_handle=b"\x00" * 32,
        name="recorded",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def ec2_passkey(sign_count: int = EC2_STORED_COUNT) -> Passkey:
    return stored(unb64url(EC2_ASSERTION["rawId"]), EC2_PUBLIC_KEY, sign_count)


def with_response(credential: dict[str, Any], **fields: str) -> dict[str, Any]:
    """``credential`` with some of its response's base64url fields replaced."""
    return {**credential, "response": {**credential["response"], **fields}}


def flip(field: str, index: int = -1) -> str:
    """A base64url field with one byte of its decoded bytes changed."""
    data = bytearray(unb64url(field))
    data[index] ^= 0x01
    return b64url(bytes(data))


def client_data_with(field: str, **changes: str) -> str:
    """A base64url clientDataJSON with some of its members replaced."""
    data = json.loads(unb64url(field))
    return b64url(json.dumps({**data, **changes}, separators=(",", ":")).encode())


def other_challenge(challenge: bytes) -> bytes:
    return bytes([challenge[0] ^ 0x01]) + challenge[1:]


# --- registration ---------------------------------------------------------------------------------


def test_a_recorded_none_registration_yields_its_credential() -> None:
    parsed, challenge = RP.read_registration(NONE_REGISTRATION)
    assert challenge == NONE_CHALLENGE  # what the core looks the stored challenge up by

    registration = RP.verify_registration(parsed, challenge)

    assert registration.credential_id == NONE_CREDENTIAL_ID
    assert registration.public_key == NONE_PUBLIC_KEY
    assert registration.sign_count == 23
    assert registration.user_verified  # flags 0x45: UP, UV, AT
    assert not registration.backup_eligible
    assert not registration.backed_up
    assert registration.aaguid == NO_AAGUID
    # Recorded before WebAuthn Level 3 moved "transports" into "response" (where toJSON() writes them
    # and py_webauthn 3 reads them): the top-level ones are not read.
    assert registration.transports == ()


def test_a_recorded_registration_gives_the_level_3_transports() -> None:
    credential = with_response(NONE_REGISTRATION)
    credential["response"]["transports"] = ["usb", "nfc", "smoke-signal"]

    assert register(credential, NONE_CHALLENGE).transports == ("usb", "nfc")  # unknown ones dropped


def test_a_recorded_registration_reads_as_a_json_string_too() -> None:
    assert register(json.loads(json.dumps(NONE_REGISTRATION)), NONE_CHALLENGE).public_key == NONE_PUBLIC_KEY
    parsed, _ = RP.read_registration(json.dumps(NONE_REGISTRATION))
    assert RP.verify_registration(parsed, NONE_CHALLENGE).credential_id == NONE_CREDENTIAL_ID


def test_a_recorded_packed_registration_yields_its_credential() -> None:
    registration = register(PACKED_REGISTRATION, PACKED_CHALLENGE)

    assert registration.credential_id == unb64url(PACKED_REGISTRATION["rawId"])
    assert registration.sign_count == 0x34
    assert registration.user_verified  # flags 0x45
    assert not registration.backup_eligible
    assert registration.aaguid == "6d44ba9b-f6ec-2e49-b930-0c8fe920cb73"  # the YubiKey's


@pytest.mark.parametrize(
    ("credential", "challenge"),
    [(NONE_REGISTRATION, NONE_CHALLENGE), (PACKED_REGISTRATION, PACKED_CHALLENGE)],
    ids=["none", "packed"],
)
def test_a_recorded_registration_is_refused_for_another_challenge(
    credential: dict[str, Any], challenge: bytes
) -> None:
    with pytest.raises(CeremonyFailed, match="challenge"):
        register(credential, other_challenge(challenge))


@pytest.mark.parametrize(
    ("credential", "challenge"),
    [(NONE_REGISTRATION, NONE_CHALLENGE), (PACKED_REGISTRATION, PACKED_CHALLENGE)],
    ids=["none", "packed"],
)
def test_a_recorded_registration_is_refused_on_another_origin(
    credential: dict[str, Any], challenge: bytes
) -> None:
    with pytest.raises(CeremonyFailed, match="origin"):
        register(credential, challenge, RelyingParty(RP_ID, ("http://localhost:5001",)))


@pytest.mark.parametrize(
    ("credential", "challenge"),
    [(NONE_REGISTRATION, NONE_CHALLENGE), (PACKED_REGISTRATION, PACKED_CHALLENGE)],
    ids=["none", "packed"],
)
def test_a_recorded_registration_is_refused_for_another_rp_id(
    credential: dict[str, Any], challenge: bytes
) -> None:
    # The origin is still one the relying party lists: only the RP ID hash in authData differs.
    with pytest.raises(CeremonyFailed, match="RP ID"):
        register(credential, challenge, RelyingParty("example.com", (ORIGIN,)))


def test_a_none_registration_with_a_changed_rp_id_hash_is_refused() -> None:
    # 'none' signs nothing: a changed byte shows only where it breaks a check, here the RP ID hash.
    attestation = parse_cbor(unb64url(NONE_REGISTRATION["response"]["attestationObject"]))
    auth_data = bytearray(attestation["authData"])
    auth_data[0] ^= 0x01
    changed = b64url(encode_cbor({**attestation, "authData": bytes(auth_data)}))

    with pytest.raises(CeremonyFailed, match="RP ID"):
        register(with_response(NONE_REGISTRATION, attestationObject=changed), NONE_CHALLENGE)


def test_a_packed_registration_with_a_changed_signature_byte_is_refused() -> None:
    attestation = parse_cbor(unb64url(PACKED_REGISTRATION["response"]["attestationObject"]))
    signature = bytearray(attestation["attStmt"]["sig"])
    signature[-1] ^= 0x01
    changed = b64url(
        encode_cbor({**attestation, "attStmt": {**attestation["attStmt"], "sig": bytes(signature)}})
    )

    with pytest.raises(CeremonyFailed, match="signature"):
        register(with_response(PACKED_REGISTRATION, attestationObject=changed), PACKED_CHALLENGE)


def test_a_packed_registration_with_a_changed_client_data_byte_is_refused() -> None:
    # One byte of the challenge in clientDataJSON changed, and a stored challenge that matches it
    # (what the core would find by its digest): the attestation signature no longer holds.
    client_data = unb64url(PACKED_REGISTRATION["response"]["clientDataJSON"])
    changed = client_data.replace(b'"challenge":"8', b'"challenge":"9', 1)
    assert changed != client_data
    credential = with_response(PACKED_REGISTRATION, clientDataJSON=b64url(changed))
    parsed, challenge = RP.read_registration(credential)
    assert challenge != PACKED_CHALLENGE

    with pytest.raises(CeremonyFailed, match="signature"):
        RP.verify_registration(parsed, challenge)


def test_a_registration_made_in_a_frame_of_another_site_is_refused() -> None:
    client_data = client_data_with(NONE_REGISTRATION["response"]["clientDataJSON"], crossOrigin=True)

    with pytest.raises(CeremonyFailed, match="cross-origin"):
        RP.read_registration(with_response(NONE_REGISTRATION, clientDataJSON=client_data))


def test_a_registration_is_not_an_authentication() -> None:
    with pytest.raises(CeremonyFailed, match="unreadable"):
        RP.read_assertion(NONE_REGISTRATION)


# --- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credential", "public_key", "stored_count", "new_count", "user_verified"),
    [
        (EC2_ASSERTION, EC2_PUBLIC_KEY, EC2_STORED_COUNT, 78, False),  # flags 0x01: UP
        (RSA_ASSERTION, RSA_PUBLIC_KEY, 0, 1, True),  # flags 0x05: UP, UV
        (OKP_ASSERTION, OKP_PUBLIC_KEY, 3, 7, False),  # flags 0x01
    ],
    ids=["es256", "rs256", "eddsa"],
)
def test_a_recorded_assertion_verifies_with_its_stored_key(
    credential: dict[str, Any], public_key: bytes, stored_count: int, new_count: int, user_verified: bool
) -> None:
    assertion = RP.read_assertion(credential)
    assert assertion.credential_id == unb64url(credential["rawId"])  # what the core finds the passkey by
    passkey = stored(assertion.credential_id, public_key, stored_count)

    verified = RP.verify_assertion(assertion, passkey)

    assert verified.sign_count == new_count
    assert verified.user_verified is user_verified
    assert not verified.backup_eligible
    assert not verified.backed_up
    assert verified.method == "hwk"
    assert not sign_count_regressed(passkey.sign_count, verified.sign_count)


def test_a_recorded_assertion_carries_its_user_handle() -> None:
    assertion = RP.read_assertion(RSA_ASSERTION)
    assert assertion.user_handle == unb64url(RSA_ASSERTION["response"]["userHandle"])
    assert RP.read_assertion(EC2_ASSERTION).user_handle is None


@pytest.mark.parametrize("stored_count", [78, 79, 1000])
def test_a_recorded_assertion_is_a_clone_when_the_stored_count_is_not_lower(stored_count: int) -> None:
    # The signature holds (verify_assertion leaves the count to the caller); the core then sees a
    # count that did not go up and refuses the login as a possible clone.
    verified = RP.verify_assertion(RP.read_assertion(EC2_ASSERTION), ec2_passkey(stored_count))

    assert verified.sign_count == 78
    assert sign_count_regressed(stored_count, verified.sign_count)


def test_a_recorded_assertion_with_a_changed_signature_byte_is_refused() -> None:
    signature = flip(EC2_ASSERTION["response"]["signature"], 10)
    assertion = RP.read_assertion(with_response(EC2_ASSERTION, signature=signature))

    with pytest.raises(CeremonyFailed, match="signature"):
        RP.verify_assertion(assertion, ec2_passkey())


def test_a_recorded_assertion_with_a_changed_authenticator_data_byte_is_refused() -> None:
    auth_data = flip(EC2_ASSERTION["response"]["authenticatorData"])  # the last byte of the count: 78 -> 79
    assertion = RP.read_assertion(with_response(EC2_ASSERTION, authenticatorData=auth_data))

    with pytest.raises(CeremonyFailed, match="signature"):
        RP.verify_assertion(assertion, ec2_passkey())


def test_a_recorded_assertion_with_a_changed_client_data_byte_is_refused() -> None:
    # A member the checks do not read ("hashAlgorithm": "SHA-256" -> "SHA-257"): only the signature
    # over the clientDataJSON's hash sees it.
    client_data = unb64url(EC2_ASSERTION["response"]["clientDataJSON"])
    changed = client_data.replace(b"SHA-256", b"SHA-257")
    assert changed != client_data
    assertion = RP.read_assertion(with_response(EC2_ASSERTION, clientDataJSON=b64url(changed)))
    assert assertion.challenge == EC2_CHALLENGE

    with pytest.raises(CeremonyFailed, match="signature"):
        RP.verify_assertion(assertion, ec2_passkey())


def test_a_recorded_assertion_replayed_for_another_challenge_is_refused() -> None:
    # The core takes the challenge from clientDataJSON and finds the stored one by its digest, so it
    # cannot hand the wrapper another one: the Assertion's challenge is replaced here instead.
    assertion = RP.read_assertion(EC2_ASSERTION)
    assert assertion.challenge == EC2_CHALLENGE

    with pytest.raises(CeremonyFailed, match="challenge"):
        RP.verify_assertion(replace(assertion, challenge=other_challenge(EC2_CHALLENGE)), ec2_passkey())


def test_a_recorded_assertion_is_refused_on_another_origin() -> None:
    rp = RelyingParty(RP_ID, ("https://localhost:5000",))

    with pytest.raises(CeremonyFailed, match="origin"):
        rp.verify_assertion(rp.read_assertion(EC2_ASSERTION), ec2_passkey())


def test_a_recorded_assertion_is_refused_for_another_rp_id() -> None:
    rp = RelyingParty("example.com", (ORIGIN,))

    with pytest.raises(CeremonyFailed, match="RP ID"):
        rp.verify_assertion(rp.read_assertion(EC2_ASSERTION), ec2_passkey())


def test_a_recorded_assertion_is_refused_with_another_credentials_key() -> None:
    assertion = RP.read_assertion(EC2_ASSERTION)

    with pytest.raises(CeremonyFailed, match="signature"):
        RP.verify_assertion(assertion, replace(ec2_passkey(), public_key=NONE_PUBLIC_KEY))


def test_an_assertion_is_not_a_registration() -> None:
    with pytest.raises(CeremonyFailed, match="unreadable"):
        RP.read_registration(EC2_ASSERTION)
