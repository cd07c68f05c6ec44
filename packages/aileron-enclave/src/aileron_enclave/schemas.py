"""Request and response bodies of the enclave's HTTP API (pydantic, at the edge only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aileron_core.enclave.attestation import NONCE_PATTERN

B64_KEY = Field(min_length=44, max_length=44, pattern=r"^[A-Za-z0-9+/]{43}=$")
HTTP_METHODS = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
HeaderPair = Annotated[
    list[Annotated[str, Field(max_length=8192)]],
    Field(min_length=2, max_length=2, description="[name, value]"),
]


class Strict(BaseModel):
    """A request body: unknown keys and type coercion are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Health(BaseModel):
    status: Literal["ok"]
    service: Literal["aileron-enclave"]
    version: str
    provider: str


class AttestBody(Strict):
    nonce: str = Field(pattern=NONCE_PATTERN, description="16-64 random bytes, lowercase hex")


class Attestation(BaseModel):
    document: dict[str, Any]
    signature: str


class RegisterBody(Strict):
    public_key: str = B64_KEY
    registration_code: str = Field(min_length=1, max_length=200)
    label: str = Field(default="", max_length=200)


class Registered(BaseModel):
    client_id: str
    registered_at: datetime


class Unregistered(BaseModel):
    client_id: str
    escrows_deleted: int


class ScopeBody(Strict):
    binding: str = Field(min_length=5, max_length=200)
    hosts: list[str] = Field(min_length=1, max_length=64)
    kind: Literal["bearer", "header", "basic", "query"]
    name: str | None = Field(default=None, max_length=64)


class EscrowBody(Strict):
    scope: ScopeBody
    sealed: str = Field(min_length=1, max_length=1 << 18, description="base64 sealed credential")


class EscrowOut(BaseModel):
    id: str
    binding: str
    hosts: list[str]
    kind: str
    name: str | None
    created_at: datetime


class EscrowList(BaseModel):
    escrows: list[EscrowOut]


class OutboundRequest(Strict):
    method: HTTP_METHODS
    url: str = Field(min_length=8, max_length=8192)
    headers: list[HeaderPair] = Field(default_factory=list, max_length=100)
    body: str | None = Field(default=None, max_length=8 << 20, description="base64 body")


class ExecuteBody(Strict):
    escrow_id: str = Field(min_length=1, max_length=64)
    request: OutboundRequest


class ExecuteOut(BaseModel):
    status: int
    headers: list[list[str]]
    body: str = Field(description="base64 of the (redacted) body")
    duration_ms: float


class WitnessBody(Strict):
    vault_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    n: int = Field(ge=1, le=(1 << 53))
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="head_digest of the head line")
