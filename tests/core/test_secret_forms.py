"""A secret echoed in any listed encoding, at any byte alignment, never survives redaction."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from urllib.parse import quote, unquote

from executor.echo_forms import recoverable
from hypothesis import given, settings
from hypothesis import strategies as st

from aileron_core.redaction import Redactor, Secret
from aileron_core.secret_forms import (
    MIN_CORE_CHARS,
    MIN_PASSWORD_CHARS,
    StreamRedactor,
    compiled_forms,
    secret_forms,
)

PROPERTY = settings(deadline=None, max_examples=150)

# Credentials are printable; the property also holds for any text, tried below.
secrets = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=64
)
unicode_secrets = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=8, max_size=32
)
filler = st.binary(max_size=12)


ENCODERS: dict[str, tuple[Callable[[bytes], str], str]] = {
    "base64": (lambda data: base64.b64encode(data).decode(), "base64"),
    "base64url": (lambda data: base64.urlsafe_b64encode(data).decode().rstrip("="), "base64url"),
    "base32": (lambda data: base64.b32encode(data).decode(), "base32"),
    "base32-lower": (lambda data: base64.b32encode(data).decode().lower().rstrip("="), "base32"),
    "hex": (bytes.hex, "hex"),
    "hex-upper": (lambda data: data.hex().upper(), "hex"),
}
"""Per spelling: how to encode, and which decoding (``executor.echo_forms``) reads it back."""


@PROPERTY
@given(secret=secrets, before=filler, after=filler, spelling=st.sampled_from(sorted(ENCODERS)))
def test_an_encoded_secret_at_any_alignment_does_not_survive(
    secret: str, before: bytes, after: bytes, spelling: str
) -> None:
    """The secret inside any blob, hex/base64/base64url/base32 encoded, cannot be decoded back
    out of the redacted text (only the edge bytes, whose characters the fillers share)."""
    encode, encoding = ENCODERS[spelling]
    blob = encode(before + secret.encode() + after)
    inner = secret.encode()[1:-1]
    assert recoverable(blob, inner, encoding)  # the test's form really is the secret
    redacted = Redactor(Secret(secret)).text(f"echo: {blob} .")
    assert not recoverable(redacted, inner, encoding)


_ESCAPE = re.compile(r'\\u[0-9a-fA-F]{4}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|\\["\\/bfnrt]')


def _unescape(text: str) -> str:
    """Every JSON escape in ``text`` decoded, the rest kept (a redaction may cut an escape)."""
    return _ESCAPE.sub(lambda match: str(json.loads(f'"{match.group()}"')), text)


@PROPERTY
@given(secret=unicode_secrets, before=st.text(max_size=8), after=st.text(max_size=8))
def test_text_forms_do_not_survive(secret: str, before: str, after: str) -> None:
    """Upper case, lower case, JSON-escaped (both ways) and percent-encoded (either hex case)
    spellings of the secret inside other text are all removed."""
    redactor = Redactor(Secret(secret))
    whole = before + secret + after
    cases = [(whole.upper(), str.lower), (whole.lower(), str.lower)]
    if any(len(changed) != len(whole) for changed, _ in cases):
        cases = []  # special casing (İ → i̇, ß → SS): see ADR 0015
    for form, decode in [
        *cases,
        (json.dumps(whole), _unescape),
        (json.dumps(whole, ensure_ascii=False), _unescape),
        (quote(whole, safe=""), unquote),
        (re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(whole, safe="")), unquote),
    ]:
        redacted = redactor.text(form)
        # Decoding the redacted text gives no trace of the secret in any case.
        assert secret.lower() not in str(decode(redacted)).lower(), form


@PROPERTY
@given(secret=secrets, text=st.text(max_size=200))
def test_text_without_the_secret_is_untouched(secret: str, text: str) -> None:
    """Redaction changes nothing in text that holds no spelling of the secret."""
    forms = [form.lower() for form in secret_forms(secret)]
    if any(form in text.lower() for form in forms):
        return  # hypothesis found the secret in its own text: nothing to prove here
    assert Redactor(Secret(secret)).text(text) == text


@PROPERTY
@given(secret=secrets.filter(lambda s: ":" not in s))
def test_no_form_is_shorter_than_the_secret(secret: str) -> None:
    """Every form of a secret is at least as long as the secret, and every base64/base32 core
    of a partial alignment has at least MIN_CORE_CHARS characters (so none matches by chance
    in ordinary text)."""
    forms = secret_forms(secret)
    assert all(len(form) >= len(secret) for form in forms)
    assert all(len(form) >= MIN_CORE_CHARS for form in forms)


def test_a_short_secret_has_no_short_cores() -> None:
    """A 3-character secret has no 2- or 3-character base64 core: only its full spellings."""
    forms = secret_forms("abc")
    assert min(len(form) for form in forms) == 3
    assert "abc" in forms and "YWJj" in forms and "616263" in forms
    text = "WJj is a word, and so is YWJ, and the answer is 42"
    assert Redactor(Secret("abc")).text(text) == text


def test_the_password_alone_is_a_form() -> None:
    """For user:password values the password is redacted alone (at MIN_PASSWORD_CHARS+)."""
    assert "hunter22" in secret_forms("alice:hunter22")
    assert "abc" not in secret_forms("alice:abc")
    assert len("abcd") == MIN_PASSWORD_CHARS and "abcd" in secret_forms("alice:abcd")


def test_ordinary_answers_are_untouched() -> None:
    """A realistic API answer (ids, base64 data, hex digests, prose) keeps every byte."""
    secret = "sk-live-4eC39HqLyjWDarjtT1zdp7dc"
    data = {
        "id": "ch_3MmlLrLkdIwHu7ix0snN0B15",
        "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "blob": base64.b64encode(bytes(range(256))).decode(),
        "text": "The quick brown fox jumps over the lazy dog. " * 4,
        "amount": 4200,
    }
    assert Redactor(Secret(secret)).data(data) == data


@PROPERTY
@given(
    secret=secrets,
    before=filler,
    after=filler,
    spelling=st.sampled_from(sorted(ENCODERS)),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_a_stream_cut_anywhere_never_lets_a_form_through(
    secret: str, before: bytes, after: bytes, spelling: str, cuts: list[int]
) -> None:
    """Fed in pieces cut at any points, the stream redactor's output is as long as its input
    and never holds a form of the secret, nor anything that decodes back to it."""
    forms = compiled_forms(secret)
    assert forms is not None
    encode, encoding = ENCODERS[spelling]
    blob = f'data: {{"echo": "{encode(before + secret.encode() + after)}"}}\n\n'
    payload = (blob + secret.upper() + json.dumps(secret)).encode()
    stream = StreamRedactor(forms)
    points = sorted({0, len(payload), *(c for c in cuts if c < len(payload))})
    out = b"".join(stream.feed(payload[a:b]) for a, b in zip(points, points[1:], strict=False))
    out += stream.flush()
    assert len(out) == len(payload)
    text = out.decode()
    assert forms.sub_bytes(b"", out) == out
    assert not recoverable(text, secret.encode()[1:-1], encoding)
    assert secret.lower() not in text.lower()


def test_a_stream_holds_back_only_a_possible_start_of_a_form() -> None:
    """A piece that cannot begin the secret goes out whole at once; a piece ending in the
    first characters of the secret keeps only those back."""
    forms = compiled_forms("sk-abcdefghijklmnop")
    assert forms is not None
    stream = StreamRedactor(forms)
    assert stream.feed(b'data: {"x": 1}\n\n') == b'data: {"x": 1}\n\n'
    assert stream.feed(b"token sk-abc") == b"token "
    assert stream.feed(b"defghijklmnop!") == b"[REDACTED]*********!"
    assert stream.flush() == b""


def test_a_cut_excerpt_drops_a_tail_that_may_begin_any_form() -> None:
    """An error excerpt cut inside the hex or base64 spelling of the secret loses that tail."""
    secret = "sk-live-4eC39HqLyjWDarjtT1zdp7dc"
    redactor = Redactor(Secret(secret))
    for form in (secret.encode().hex().upper(), base64.b64encode(secret.encode()).decode()):
        assert redactor.excerpt("error: " + form[:20], cut=True, limit=2048) == "error: "
        assert redactor.excerpt("error: " + form, cut=False, limit=2048) == "error: [REDACTED]"


def test_the_redactor_removes_the_same_forms_from_bytes() -> None:
    """The redactor (the enclave's too) removes upper-case hex and base32 from bytes too."""
    secret = "sk-live-4eC39HqLyjWDarjtT1zdp7dc"
    body = f"{secret.encode().hex().upper()} {base64.b32encode(secret.encode()).decode()}"
    assert Redactor(Secret(secret)).bytes(body.encode()) == b"[REDACTED] [REDACTED]"
    assert Redactor(Secret(secret)).text(secret.upper()) == "[REDACTED]"
