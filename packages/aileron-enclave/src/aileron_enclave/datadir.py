"""The enclave's data directory and its identity: signing, sealing and storage keys, TLS.

The data directory (``--data-dir``, else ``$AILERON_ENCLAVE_HOME``, else
``~/.aileron-enclave``) is mode 0700; every file in it is 0600 and written atomically:

| File | What |
|---|---|
| ``keys.json`` | the Ed25519 signing key, the X25519 sealing key, the 256-bit storage key |
| ``tls-key.pem``, ``tls-cert.pem`` | the TLS key (ECDSA P-256) and its self-signed certificate |
| ``escrow-store.json`` | clients and escrowed credentials, sealed at rest (``store``) |
| ``registration-code`` | the one-time code that lets the next client register |
| ``events.jsonl`` | what the enclave did: registrations, escrows, every execute (no secrets) |
| ``listen.json`` | ``{url, pid, fingerprint, measurement}`` of the running server |
| ``serve.lock`` | held by the running server; a second one on the same directory refuses |

Everything is generated on the first start. The certificate's sha256 is the fingerprint that
``aileron enclave attach`` pins; it never changes unless the TLS files are removed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID

from aileron_core.enclave.encoding import b64decode, b64encode, fingerprint_of
from aileron_core.fileio import atomic_write
from aileron_core.paths import ensure_private_dir
from aileron_enclave.errors import EnclaveError

__all__ = ["DATA_DIR_ENV", "DataDir", "DataDirError", "Identity", "default_data_dir"]

DATA_DIR_ENV = "AILERON_ENCLAVE_HOME"
KEYS_FORMAT = "aileron-enclave-keys"
CERT_DAYS = 3650


class DataDirError(EnclaveError):
    """The data directory is missing a file, or holds one that is unreadable or too open."""

    code = "data_dir_invalid"


def default_data_dir() -> Path:
    """``$AILERON_ENCLAVE_HOME``, else ``~/.aileron-enclave``."""
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".aileron-enclave"


@attrs.frozen
class DataDir:
    """The files of one enclave data directory."""

    path: Path

    @property
    def keys(self) -> Path:
        return self.path / "keys.json"

    @property
    def tls_key(self) -> Path:
        return self.path / "tls-key.pem"

    @property
    def tls_cert(self) -> Path:
        return self.path / "tls-cert.pem"

    @property
    def store(self) -> Path:
        return self.path / "escrow-store.json"

    @property
    def registration_code(self) -> Path:
        return self.path / "registration-code"

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def listen(self) -> Path:
        return self.path / "listen.json"

    @property
    def lock(self) -> Path:
        return self.path / "serve.lock"

    def ensure(self) -> DataDir:
        """Create the directory (0700), or tighten its mode."""
        ensure_private_dir(self.path)
        return self

    def read_private(self, path: Path) -> bytes:
        """The bytes of a 0600 file here; ``DataDirError`` if it is missing or too open."""
        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except FileNotFoundError:
            raise DataDirError(
                f"{path} does not exist",
                hint="run `aileron-enclave serve` once to create the enclave's identity",
            ) from None
        except OSError as error:
            raise DataDirError(f"cannot read {path}: {error.strerror}") from None
        if stat.S_IMODE(mode) & 0o077:
            raise DataDirError(
                f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o})",
                hint=f"run `chmod 600 {path}`",
            )
        return data


@attrs.frozen
class Identity:
    """The enclave's keys and certificate."""

    signing_key: Ed25519PrivateKey
    sealing_key: X25519PrivateKey
    storage_key: bytes = attrs.field(repr=False)
    cert_der: bytes

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of the DER certificate: what clients pin."""
        return fingerprint_of(self.cert_der)

    @classmethod
    def load(cls, data_dir: DataDir) -> Identity:
        """The identity in ``data_dir``; ``DataDirError`` if any part is missing or broken."""
        raw = data_dir.read_private(data_dir.keys)
        try:
            keys: dict[str, Any] = json.loads(raw)
            if keys.get("format") != KEYS_FORMAT or keys.get("version") != 1:
                raise ValueError("not an aileron-enclave keys file of version 1")
            signing = Ed25519PrivateKey.from_private_bytes(
                b64decode(keys["signing_key"], what="signing_key", size=32)
            )
            sealing = X25519PrivateKey.from_private_bytes(
                b64decode(keys["sealing_key"], what="sealing_key", size=32)
            )
            storage = b64decode(keys["storage_key"], what="storage_key", size=32)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise DataDirError(f"{data_dir.keys} is corrupt: {error}") from None
        data_dir.read_private(data_dir.tls_key)
        try:
            cert = x509.load_pem_x509_certificate(data_dir.read_private(data_dir.tls_cert))
        except ValueError as error:
            raise DataDirError(f"{data_dir.tls_cert} is corrupt: {error}") from None
        return cls(signing, sealing, storage, cert.public_bytes(serialization.Encoding.DER))

    @classmethod
    def load_or_create(cls, data_dir: DataDir) -> Identity:
        """The identity in ``data_dir``, generating whatever part does not exist yet."""
        data_dir.ensure()
        if not data_dir.keys.exists():
            _write_keys(data_dir)
        if not (data_dir.tls_key.exists() and data_dir.tls_cert.exists()):
            _write_tls(data_dir)
        return cls.load(data_dir)


def _write_keys(data_dir: DataDir) -> None:
    def raw(key: Ed25519PrivateKey | X25519PrivateKey) -> str:
        return b64encode(
            key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )

    document = {
        "format": KEYS_FORMAT,
        "version": 1,
        "created_at": datetime.now(UTC).isoformat(),
        "signing_key": raw(Ed25519PrivateKey.generate()),
        "sealing_key": raw(X25519PrivateKey.generate()),
        "storage_key": b64encode(os.urandom(32)),
    }
    atomic_write(data_dir.keys, json.dumps(document, indent=2).encode() + b"\n")


def _write_tls(data_dir: DataDir) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aileron-enclave")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=CERT_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        # Its own trust anchor: clients load exactly this certificate as the only CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    atomic_write(
        data_dir.tls_key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    atomic_write(data_dir.tls_cert, cert.public_bytes(serialization.Encoding.PEM))
