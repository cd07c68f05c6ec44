"""The TEE provider the enclave runs under, from ``AILERON_TEE_PROVIDER``.

Only ``local`` is implemented: an ordinary process on this machine that keeps its keys in its
data directory and marks every attestation ``debug: true``. The variable must be set
explicitly — an unset variable is refused rather than defaulted, so nobody runs the debug
provider believing it is a hardware enclave (``adr/0012-enclave-trust-model.md``). Names of
hardware providers that are planned are refused as "not implemented"; anything else as unknown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from aileron_enclave.errors import EnclaveError

__all__ = ["LOCAL", "PLANNED_PROVIDERS", "PROVIDER_ENV", "ProviderError", "select_provider"]

PROVIDER_ENV = "AILERON_TEE_PROVIDER"
LOCAL = "local"
PLANNED_PROVIDERS: Mapping[str, str] = {
    "confidential-space": "Google Cloud Confidential Space",
    "nitro": "AWS Nitro Enclaves",
    "sev-snp": "AMD SEV-SNP confidential VMs",
    "tdx": "Intel TDX confidential VMs",
}


class ProviderError(EnclaveError):
    """``AILERON_TEE_PROVIDER`` is unset, unknown, or names a provider not implemented yet."""

    code = "unsupported_provider"


def select_provider(environ: Mapping[str, str] | None = None) -> str:
    """The provider to run; ``ProviderError`` unless it is ``local``."""
    env = os.environ if environ is None else environ
    name = env.get(PROVIDER_ENV, "").strip()
    if name == LOCAL:
        return LOCAL
    if not name:
        raise ProviderError(
            f"{PROVIDER_ENV} is not set",
            hint=f"set {PROVIDER_ENV}=local to run the local development provider (no hardware"
            " isolation; its attestations say debug: true)",
        )
    if name in PLANNED_PROVIDERS:
        raise ProviderError(
            f"TEE provider {name!r} ({PLANNED_PROVIDERS[name]}) is not implemented yet",
            hint=f"only {PROVIDER_ENV}=local runs in this build",
        )
    known = ", ".join([LOCAL, *PLANNED_PROVIDERS])
    raise ProviderError(
        f"unknown TEE provider {name!r} in {PROVIDER_ENV}",
        hint=f"use {PROVIDER_ENV}=local (known names: {known})",
    )
