"""Properties of the inbound ``X-Signature-256`` check, for any body, secret and header."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from webhooks.signing import inbound_signature, inbound_signature_valid

HEX = "0123456789abcdef"

secrets_ = st.text(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)
# Header values as they can reach Django: any text (latin-1 decoded bytes included), or none.
headers = st.one_of(st.none(), st.text(max_size=200), st.binary(max_size=200).map(bytes.hex))


def _forms(signature: str) -> st.SearchStrategy[str]:
    """The ways a sender may write a valid signature: bare or ``sha256=``, any case."""
    return st.sampled_from(
        [
            signature,
            signature.upper(),
            f"sha256={signature}",
            f"SHA256={signature.upper()}",
            f"  sha256={signature}\t",
        ]
    )


@given(secret=secrets_, body=bodies, data=st.data())
def test_a_valid_signature_over_any_bytes_verifies(secret, body, data):
    header = data.draw(_forms(inbound_signature(secret, body)))
    assert inbound_signature_valid(secret=secret, raw_body=body, header=header) is True


@given(secret=secrets_, body=bodies.filter(bool), data=st.data())
@example(secret="s", body=b"{}", data=None)
def test_any_single_byte_change_in_the_body_fails(secret, body, data):
    signature = inbound_signature(secret, body)
    if data is None:  # the explicit example: a one-byte body change of "{}"
        index, flip = 1, 1
    else:
        index = data.draw(st.integers(0, len(body) - 1), label="index")
        flip = data.draw(st.integers(1, 255), label="xor")
    changed = bytearray(body)
    changed[index] ^= flip
    assert (
        inbound_signature_valid(secret=secret, raw_body=bytes(changed), header=signature) is False
    )


@given(secret=secrets_, body=bodies, data=st.data())
def test_any_single_character_change_in_the_signature_fails(secret, body, data):
    signature = inbound_signature(secret, body)
    index = data.draw(st.integers(0, len(signature) - 1), label="index")
    # Another hex digit (a case change is the same digit), or any other character.
    replacement = data.draw(
        st.one_of(
            st.sampled_from(HEX).filter(lambda c: c != signature[index]),
            st.characters().filter(lambda c: c.lower() not in HEX),
        ),
        label="replacement",
    )
    forged = signature[:index] + replacement + signature[index + 1 :]
    for header in (forged, f"sha256={forged}"):
        assert inbound_signature_valid(secret=secret, raw_body=body, header=header) is False


@given(secret=secrets_, body=bodies, data=st.data())
def test_a_signature_cut_short_or_lengthened_fails(secret, body, data):
    signature = inbound_signature(secret, body)
    cut = data.draw(st.integers(0, len(signature) - 1), label="keep")
    extra = data.draw(st.text(alphabet=HEX, min_size=1, max_size=8), label="extra")
    for header in (signature[:cut], signature + extra, extra + signature):
        assert inbound_signature_valid(secret=secret, raw_body=body, header=header) is False


@given(secret=secrets_, other=secrets_, body=bodies)
def test_a_signature_made_with_another_secret_fails(secret, other, body):
    signature = inbound_signature(other, body)
    assert inbound_signature_valid(secret=secret, raw_body=body, header=signature) is (
        signature == inbound_signature(secret, body)
    )


@given(secret=st.text(max_size=64), body=bodies, header=headers)
@example(secret="s", body=b"", header="sha256=")
@example(secret="s", body=b"", header="sha256=" + "g" * 64)
@example(secret="s", body=b"", header="\x00" * 64)
@example(secret="s", body=b"", header="\u0660" * 64)  # Arabic-Indic digits: not hex
@example(secret="", body=b"", header=inbound_signature("", b""))
def test_garbage_headers_never_raise_and_never_verify_by_accident(secret, body, header):
    result = inbound_signature_valid(secret=secret, raw_body=body, header=header)
    assert result is False or (
        bool(secret)
        and header is not None
        and header.strip().lower().removeprefix("sha256=") == inbound_signature(secret, body)
    )
