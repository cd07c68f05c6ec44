"""``/v1/enclave``: attach the daemon to an ``aileron-enclave``, inspect and detach it.

Master token only. Escrowing a binding is ``POST /v1/bindings/{name}/escrow``
(``routes/bindings``). The work happens in ``aileron_cli.daemon.enclave.service``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.schemas import AttachEnclave, Detached, DetachEnclave, EnclaveStatus
from aileron_core.convert import converter

ENCLAVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    502: ERROR_RESPONSES[409]
    | {"description": "The enclave is unreachable, not the pinned one, or refused"},
}

router = APIRouter(prefix="/enclave", tags=["enclave"], responses=ENCLAVE_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def _valid_host(host: str) -> bool:
    """Whether ``host`` is an IP address or a syntactically valid DNS name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return len(host) <= 253 and _HOST_NAME.fullmatch(host) is not None
    return True


def check_url(url: str) -> str:
    """``url`` if it is ``https://HOST[:PORT][/]``; ``invalid_enclave_url`` otherwise."""
    problem = None
    try:
        parsed = httpx.URL(url)
        if parsed.scheme != "https" or not parsed.host:
            problem = "it must be https://HOST[:PORT]"
        elif not _valid_host(parsed.host):
            problem = f"{parsed.host[:100]!r} is not a host name or IP address"
        elif parsed.userinfo or parsed.query or parsed.fragment or parsed.path not in ("", "/"):
            problem = "it must not carry user info, a path, a query or a fragment"
    except (httpx.InvalidURL, ValueError) as error:
        problem = str(error)
    if problem:
        raise DaemonError(
            "invalid_enclave_url",
            f"{url[:200]!r} is not an enclave URL: {problem}",
            hint="use the URL `aileron-enclave serve` printed, e.g. https://127.0.0.1:9443",
        )
    return url.rstrip("/")


def status_out(data: dict[str, Any]) -> EnclaveStatus:
    return EnclaveStatus.model_validate(converter.unstructure(data))


@router.get("", response_model=EnclaveStatus)
async def enclave_status(
    enclave: deps.Enclave,
    _: Admin,
    verify: Annotated[bool, Query(description="run a fresh attestation")] = False,
) -> EnclaveStatus:
    """The attachment (no secret) and the escrowed bindings."""
    return status_out(await enclave.status(verify=verify))


@router.post("/attach", response_model=EnclaveStatus)
async def attach_enclave(
    body: AttachEnclave, enclave: deps.Enclave, custody: deps.Custody, who: Admin
) -> EnclaveStatus:
    """Pin the enclave's certificate, verify a fresh attestation, register a client key."""
    await enclave.attach(
        url=check_url(body.url),
        fingerprint=body.fingerprint,
        registration_code=body.registration_code,
        measurement=body.measurement,
        actor=who.actor,
    )
    await custody.start_witness()
    return status_out(await enclave.status(verify=False))


@router.post("/detach", response_model=Detached)
async def detach_enclave(
    body: DetachEnclave, enclave: deps.Enclave, custody: deps.Custody, who: Admin
) -> Detached:
    """Unregister from the enclave and forget it (escrowed bindings need ``force``)."""
    await custody.stop_witness()
    return Detached.model_validate(await enclave.detach(force=body.force, actor=who.actor))
