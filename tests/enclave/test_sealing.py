"""Property tests of the sealing format: a credential sealed to the enclave for one scope."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from aileron_core.enclave.sealing import (
    MAGIC,
    Scope,
    ScopeError,
    SealError,
    open_credential,
    raw_public_key,
    seal_credential,
)

KEY = X25519PrivateKey.generate()
OTHER_KEY = X25519PrivateKey.generate()
SCOPE = Scope(binding="token/echo/default", hosts=["127.0.0.1:8765"], kind="bearer")

segments = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True)
hosts = st.lists(
    st.sampled_from(["api.example.com", "127.0.0.1:8080", "localhost", "a.b.c:443"]),
    min_size=1,
    max_size=4,
)
scopes = st.builds(
    lambda kind, service, identity, host_list, name: Scope(
        binding=f"{kind}/{service}/{identity}",
        hosts=host_list,
        kind=name[0],
        name=name[1],
    ),
    segments,
    segments,
    segments,
    hosts,
    st.sampled_from(
        [("bearer", None), ("basic", None), ("header", "X-Api-Key"), ("query", "api_key")]
    ),
)
secrets = st.binary(min_size=1, max_size=300)


def seal(secret: bytes, scope: Scope = SCOPE) -> bytes:
    return seal_credential(secret, scope, raw_public_key(KEY))


@settings(max_examples=200)
@given(secret=secrets, scope=scopes)
def test_round_trip_opens_to_the_sealed_secret(secret: bytes, scope: Scope) -> None:
    """Whatever is sealed for a scope opens, with the recipient's key and that scope, unchanged."""
    sealed = seal(secret, scope)
    assert sealed.startswith(MAGIC)
    assert len(secret) < 8 or secret not in sealed
    assert open_credential(sealed, scope, KEY) == secret


@settings(max_examples=300)
@given(secret=secrets, data=st.data())
def test_any_byte_flip_is_detected(secret: bytes, data: st.DataObject) -> None:
    """Changing any bit of any byte of a sealed credential makes it fail to open."""
    sealed = seal(secret)
    index = data.draw(st.integers(0, len(sealed) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="mask")
    tampered = sealed[:index] + bytes([sealed[index] ^ mask]) + sealed[index + 1 :]
    with pytest.raises(SealError):
        open_credential(tampered, SCOPE, KEY)


@settings(max_examples=200)
@given(secret=secrets, data=st.data())
def test_any_truncation_or_extension_is_detected(secret: bytes, data: st.DataObject) -> None:
    """A sealed credential cut short anywhere, or with bytes appended, fails to open."""
    sealed = seal(secret)
    cut = data.draw(st.integers(0, len(sealed) - 1), label="cut")
    with pytest.raises(SealError):
        open_credential(sealed[:cut], SCOPE, KEY)
    extra = data.draw(st.binary(min_size=1, max_size=8), label="extra")
    with pytest.raises(SealError):
        open_credential(sealed + extra, SCOPE, KEY)


@given(secret=secrets, scope=scopes)
def test_another_scope_or_key_does_not_open_it(secret: bytes, scope: Scope) -> None:
    """A credential opens only with the scope it was sealed for and the recipient's own key."""
    sealed = seal(secret, SCOPE)
    if scope != SCOPE:
        with pytest.raises(SealError):
            open_credential(sealed, scope, KEY)
    with pytest.raises(SealError):
        open_credential(sealed, SCOPE, OTHER_KEY)


def test_widening_the_hosts_breaks_the_seal() -> None:
    """Adding a host to the scope (to send the secret elsewhere) makes the credential unusable."""
    sealed = seal(b"secret")
    wider = Scope(binding=SCOPE.binding, hosts=[*SCOPE.hosts, "evil.example.com"], kind="bearer")
    with pytest.raises(SealError, match="another scope"):
        open_credential(sealed, wider, KEY)


@given(st.recursive(st.none() | st.booleans() | st.text() | st.integers(), lambda c: (
    st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=5))))  # fmt: skip
def test_scope_parser_raises_only_scope_errors(value: object) -> None:
    """Parsing arbitrary JSON as a scope yields a valid scope or ScopeError, nothing else."""
    try:
        scope = Scope.from_json(value)
    except ScopeError:
        return
    assert Scope.from_json(scope.to_json()) == scope


def test_scope_rules_are_enforced() -> None:
    """Scopes with a bad binding, no hosts, a wildcard host or a missing name are refused."""
    for bad in (
        {"binding": "nope", "hosts": ["a.com"], "kind": "bearer"},
        {"binding": "t/s/d", "hosts": [], "kind": "bearer"},
        {"binding": "t/s/d", "hosts": ["*.a.com"], "kind": "bearer"},
        {"binding": "t/s/d", "hosts": ["a.com"], "kind": "header"},
        {"binding": "t/s/d", "hosts": ["a.com"], "kind": "bearer", "name": "X"},
        {"binding": "t/s/d", "hosts": ["a.com"], "kind": "header", "name": "Host"},
    ):
        with pytest.raises(ScopeError):
            Scope.from_json(bad)
