"""Request and response bodies at the HTTP edge (pydantic; the core's attrs models inside)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Passphrase = Field(min_length=1, max_length=1024)


class Strict(BaseModel):
    """A request body: unknown keys and type coercion (``false`` as ``0``) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Health(BaseModel):
    status: Literal["ok"]
    service: Literal["aileron"]
    version: str


class Status(BaseModel):
    version: str
    pid: int
    url: str
    started_at: datetime
    uptime_s: float
    vault: Literal["missing", "locked", "unlocked"]
    active_sessions: int
    actions: int
    connectors: int
    bindings: int


class PassphraseBody(Strict):
    passphrase: str = Passphrase


class ChangePassphraseBody(Strict):
    old: str = Passphrase
    new: str = Passphrase


class VaultStatus(BaseModel):
    state: Literal["missing", "locked", "unlocked"]


class EntryBody(Strict):
    value: str = Field(max_length=1 << 20)
    metadata: dict[str, str] | None = None


class Entry(BaseModel):
    path: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime


class SandboxBody(Strict):
    runtime: str = Field(min_length=1, max_length=64)
    image: str = Field(min_length=1, max_length=512)


class NewSession(Strict):
    agent: str = Field(min_length=1, max_length=64)
    working_dir: str = Field(min_length=1, max_length=4096)
    sandbox: SandboxBody | None = None


class SessionOut(BaseModel):
    id: str
    agent: str
    working_dir: str
    sandbox: SandboxBody | None
    started_at: datetime
    ended_at: datetime | None
    exit_code: int | None
    state: Literal["running", "ended", "orphaned"]


class CreatedSession(SessionOut):
    token: str = Field(description="The session token; shown only in this answer.")


class EndSession(Strict):
    exit_code: int | None = Field(ge=-(2**31), le=2**31 - 1)


class ActorOut(BaseModel):
    type: Literal["agent", "human", "service"]
    id: str


class AuditRecordOut(BaseModel):
    seq: int
    id: str
    ts: datetime
    type: str
    actor: ActorOut
    session_id: str | None
    payload: dict[str, Any]
    prev: str
    hash: str


class AuditVerifyOut(BaseModel):
    ok: bool
    records: int
    first_bad_seq: int | None
    first_bad_line: int | None
    reason: str | None
    last_hash: str
