"""A sandboxed session's certificate authority: what lets its egress proxy terminate TLS for
the hosts a binding is brokered to (issue #19, ADR 0028).

:meth:`SessionCA.create` makes an EC P-256 CA (``BasicConstraints`` CA with path length 0,
``KeyUsage`` keyCertSign/cRLSign, ``NameConstraints`` permitting exactly the exposed names) and
one leaf for all of them (SAN DNS names, ``ExtendedKeyUsage`` serverAuth). The container trusts
the CA certificate (:attr:`SessionCA.cert_pem`); the private keys exist only in this process's
memory: the leaf reaches OpenSSL through an anonymous memory file (``memfd_create``), never a
file on disk; the CA's key signs the leaf and is dropped at once, and
:meth:`SessionCA.forget` drops the leaf's. A new session gets a new CA.
"""

from __future__ import annotations

import datetime
import os
import ssl
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SessionCA"]

VALIDITY = datetime.timedelta(days=30)
"""How long the certificates are valid (a session rarely lives a day; the CA dies with it)."""
BACKDATE = datetime.timedelta(hours=1)
"""How far ``notBefore`` lies in the past (a container's clock may be a little behind)."""


def _name(common: str, session_id: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Aileron"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"session {session_id}"[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, common[:64]),
        ]
    )


class SessionCA:
    """One session's CA and its leaf for exactly the exposed host names."""

    def __init__(
        self,
        cert: x509.Certificate,
        leaf: x509.Certificate,
        leaf_key: ec.EllipticCurvePrivateKey | None,
        hosts: tuple[str, ...],
    ) -> None:
        self._cert = cert
        self._leaf = leaf
        self._leaf_key = leaf_key
        self.hosts = hosts
        self.cert_pem: bytes = cert.public_bytes(serialization.Encoding.PEM)
        """The CA certificate (public: the container trusts it)."""

    @classmethod
    def create(cls, session_id: str, hosts: Sequence[str]) -> SessionCA:
        """A new CA for ``session_id`` and its leaf for ``hosts`` (exact DNS names)."""
        names = tuple(dict.fromkeys(hosts))
        if not names:
            raise ValueError("a session CA needs at least one host")
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(f"Aileron session CA {session_id}", session_id)
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.NameConstraints(
                    permitted_subtrees=[x509.DNSName(name) for name in names],
                    excluded_subtrees=None,
                ),
                critical=True,
            )
            .add_extension(ca_ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0], session_id))
            .issuer_name(subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name) for name in names]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        # The CA's key has signed the one leaf the session needs and is dropped here: nothing
        # can make it sign another certificate.
        return cls(cert, leaf, leaf_key, names)

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the leaf (and the CA) for :attr:`hosts`: TLS 1.2
        or later, ALPN ``http/1.1`` only. The key is handed to OpenSSL through a memory file."""
        if self._leaf_key is None:
            raise RuntimeError("this session CA is closed")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        pem = (
            self._leaf_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + self._leaf.public_bytes(serialization.Encoding.PEM)
            + self.cert_pem
        )
        fd = os.memfd_create("aileron-session-leaf", os.MFD_CLOEXEC)
        try:
            os.write(fd, pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return context

    def forget(self) -> None:
        """Drop the leaf's private key (a context made earlier keeps its own copy in OpenSSL)."""
        self._leaf_key = None
