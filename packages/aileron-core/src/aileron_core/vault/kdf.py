"""The passphrase key derivation: Argon2id, with parameters bounded before any work is done.

The parameters travel in the vault file, so a hostile or damaged file could ask for a
derivation that takes minutes or exhausts memory. :func:`kdf_params_problem` is checked when a
file is parsed (long before anything is derived) and when :class:`KdfParams` is constructed.
"""

from __future__ import annotations

import unicodedata

import attrs
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from aileron_core.vault.errors import InvalidPassphrase

KDF_NAME = "argon2id"

# Caps (ADR 0002). The minimums are Argon2's own: at least one pass, one lane and 8 KiB per lane.
MIN_TIME_COST = 1
MAX_TIME_COST = 10
MIN_PARALLELISM = 1
MAX_PARALLELISM = 16
MIN_MEMORY_KIB_PER_LANE = 8
MAX_MEMORY_KIB = 1024 * 1024  # 1 GiB

SALT_BYTES = 16
MIN_SALT_BYTES = 16
MAX_SALT_BYTES = 64
KEY_BYTES = 32


def kdf_params_problem(time_cost: int, memory_kib: int, parallelism: int) -> str | None:
    """Say what is wrong with these Argon2id parameters, or ``None`` when they are in bounds."""
    if not MIN_TIME_COST <= time_cost <= MAX_TIME_COST:
        return f"time_cost {time_cost} is outside {MIN_TIME_COST}..{MAX_TIME_COST}"
    if not MIN_PARALLELISM <= parallelism <= MAX_PARALLELISM:
        return f"parallelism {parallelism} is outside {MIN_PARALLELISM}..{MAX_PARALLELISM}"
    low = MIN_MEMORY_KIB_PER_LANE * parallelism
    if not low <= memory_kib <= MAX_MEMORY_KIB:
        return f"memory_kib {memory_kib} is outside {low}..{MAX_MEMORY_KIB}"
    return None


def _check_params(instance: KdfParams, _attribute: object, _value: object) -> None:
    problem = kdf_params_problem(instance.time_cost, instance.memory_kib, instance.parallelism)
    if problem:
        raise ValueError(f"invalid Argon2id parameters: {problem}")


def _strict_int(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if type(value) is not int:
        raise TypeError(f"{attribute.name} must be an int, not {type(value).__name__}")


@attrs.frozen
class KdfParams:
    """Argon2id cost parameters: passes, memory in KiB, and lanes."""

    time_cost: int = attrs.field(validator=_strict_int)
    memory_kib: int = attrs.field(validator=_strict_int)
    parallelism: int = attrs.field(validator=[_strict_int, _check_params])


DEFAULT_KDF = KdfParams(time_cost=3, memory_kib=65536, parallelism=4)


def encode_passphrase(passphrase: str) -> bytes:
    """The bytes the KDF sees: the passphrase in Unicode NFC, encoded as UTF-8.

    Raises ``InvalidPassphrase`` for a non-string or a string that is not Unicode text (lone
    surrogates), since no other implementation could reproduce its bytes.
    """
    if not isinstance(passphrase, str):
        raise InvalidPassphrase(f"a passphrase must be a string, not {type(passphrase).__name__}")
    try:
        return unicodedata.normalize("NFC", passphrase).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPassphrase("the passphrase is not valid Unicode text") from None


def derive_key(passphrase: bytes, salt: bytes, params: KdfParams) -> bytes:
    """Derive the 256-bit key-encryption key from the encoded passphrase."""
    kdf = Argon2id(
        salt=salt,
        length=KEY_BYTES,
        iterations=params.time_cost,
        lanes=params.parallelism,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(passphrase)


__all__ = [
    "DEFAULT_KDF",
    "KDF_NAME",
    "KdfParams",
    "derive_key",
    "encode_passphrase",
    "kdf_params_problem",
]
