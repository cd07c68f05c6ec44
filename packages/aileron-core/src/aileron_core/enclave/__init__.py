"""The protocol between the daemon and ``aileron-enclave`` (SPEC §12), shared by both sides.

- ``aileron_core.enclave.sealing``: a credential sealed to the enclave's X25519 key, bound to
  its scope (binding, hosts, credential kind);
- ``aileron_core.enclave.attestation``: the nonce-bound attestation document, signed with the
  enclave's Ed25519 key, and its verification;
- ``aileron_core.enclave.signing``: how a registered client signs every request;
- ``aileron_core.enclave.encoding``: strict base64 and key encodings.

Errors::

    AileronError
    └── EnclaveProtocolError                      (base of the protocol's errors)
        ├── SealError          sealed_credential_invalid   a sealed credential fails to open
        ├── ScopeError         invalid_scope               a scope breaks a rule
        └── AttestationError   attestation_invalid         an attestation does not verify
"""

from __future__ import annotations

from aileron_core.enclave.encoding import EnclaveProtocolError

__all__ = ["EnclaveProtocolError"]
