"""Request and response bodies at the HTTP edge (pydantic; the core's attrs models inside)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    audit_notices: list[str] = Field(default_factory=list)


class PassphraseBody(Strict):
    passphrase: str = Passphrase


class ChangePassphraseBody(Strict):
    old: str = Passphrase
    new: str = Passphrase


class VaultStatus(BaseModel):
    state: Literal["missing", "locked", "unlocked"]


class Unlocked(VaultStatus):
    restore_accepted: bool


class UnlockBody(Strict):
    passphrase: str = Passphrase
    accept_restore: bool = False


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
    contain: bool = Field(
        default=False,
        description="The calling process launches the agent: every process below it is the"
        " agent's (refused the master token), and the session ends when the caller dies."
        " Needs the daemon's Unix socket.",
    )


class ListenerAddress(BaseModel):
    host: str | None = None
    port: int | None = None
    socket: str | None = Field(default=None, description="A Unix listener's socket path.")


class ExposedOut(BaseModel):
    """A binding brokered to a session: its variable and hosts (what the session keeps)."""

    binding: str
    variable: str
    hosts: list[str]


class SessionOut(BaseModel):
    id: str
    agent: str
    working_dir: str
    sandbox: SandboxBody | None
    started_at: datetime
    ended_at: datetime | None
    exit_code: int | None
    state: Literal["running", "ended", "orphaned"]
    end_reason: str | None = Field(
        default=None, description="Why the session ended other than by its launcher's word."
    )
    listener: ListenerAddress | None = Field(
        default=None, description="The session's own listener (for a sandboxed agent), if open."
    )
    exposed: list[ExposedOut] = Field(
        default_factory=list, description="The bindings brokered to the session (ADR 0028)."
    )


class CreatedSession(SessionOut):
    token: str = Field(description="The session token; shown only in this answer.")


class NewAgentProcess(Strict):
    pid: int = Field(ge=2, le=2**31 - 1, description="The agent's process id.")


class EndSession(Strict):
    exit_code: int | None = Field(ge=-(2**31), le=2**31 - 1)


class NewListener(Strict):
    host: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The IP address to listen on: one the agent's container reaches this host at.",
    )
    unix: bool = Field(
        default=False,
        description="Listen on the Unix socket api.sock in the session's run folder instead"
        " (mounted into a sandboxed agent's container at /run/aileron).",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> NewListener:
        if (self.host is None) == (not self.unix):
            raise ValueError("give either `host` or `unix: true`")
        return self


class ListenerOut(BaseModel):
    session_id: str
    host: str | None = None
    port: int | None = None
    url: str | None = Field(
        default=None, description="The daemon's /v1 base through a TCP listener."
    )
    socket: str | None = Field(default=None, description="A Unix listener's socket path.")
    dir: str | None = Field(
        default=None, description="The session's run folder holding the socket (0700)."
    )


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


class LoadErrorOut(BaseModel):
    file: str
    code: str
    message: str


class InstallConnector(Strict):
    spec: dict[str, Any] = Field(description="the aileron.connector.v1 document")
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="expected content digest"
    )


class OperationOut(BaseModel):
    name: str
    summary: str
    method: str
    path: str
    hosts: list[str]
    scheme: str
    approval: Literal["required", "none"]
    idempotency: str
    inputs: list[dict[str, Any]]


class ToolOut(BaseModel):
    name: str
    description: str
    operations: list[OperationOut]


class AgentOperationOut(BaseModel):
    """What an agent (a session token) may do with one operation run directly (ADR 0017)."""

    tool: str
    operation: str
    allowed: bool
    approval_required: bool = Field(description="the strictest approval gate that applies")
    reason: str | None = Field(default=None, description="why it is refused, when it is")
    approved_by: list[str] = Field(
        default_factory=list, description="enabled approval-gated actions that wrap it"
    )


class ConnectorOut(BaseModel):
    fqn: str
    version: str
    description: str
    sha256: str
    credential: dict[str, Any]
    tools: list[ToolOut]
    agents: bool = Field(
        default=True, description="whether agents may run this connector's operations directly"
    )
    agent_operations: list[AgentOperationOut] = Field(default_factory=list)


class PatchConnector(Strict):
    """Open or close a connector (or one ``tool``/``operation`` of it) to agents' direct runs."""

    agents: bool
    tool: str | None = Field(default=None, min_length=1, max_length=64)
    operation: str | None = Field(default=None, min_length=1, max_length=64)


class InstallAction(Strict):
    manifest: str = Field(min_length=1, max_length=256 * 1024)
    # None keeps the action's current state (a new action is enabled); False installs it
    # disabled from its first moment (the catalog's `connector add` without --enable).
    enabled: bool | None = None


class ActionInputOut(BaseModel):
    name: str
    type: str
    required: bool
    description: str


class ActionOut(BaseModel):
    name: str
    version: str
    description: str
    enabled: bool
    approval_required: bool
    inputs: list[ActionInputOut]
    input_schema: dict[str, Any]
    connectors: list[str]


class ActionDetail(ActionOut):
    manifest: str


class ActionList(BaseModel):
    actions: list[ActionOut]
    load_errors: list[LoadErrorOut]


class PatchAction(Strict):
    enabled: bool


class RunBody(Strict):
    args: dict[str, Any] = Field(default_factory=dict)


class OperationRunBody(Strict):
    connector_fqn: str = Field(min_length=1, max_length=256)
    tool: str = Field(min_length=1, max_length=64)
    operation: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)


class RunDone(BaseModel):
    audit_id: str
    result: Any


class RunPending(BaseModel):
    status: Literal["pending_approval"]
    approval_id: str
    message: str
    link: str = Field(description="the approval's web page: http://127.0.0.1:PORT/ui/approvals/ID")


class NewBinding(Strict):
    name: str = Field(min_length=5, max_length=200)
    value: str = Field(min_length=1, max_length=1 << 16)
    metadata: dict[str, str] = Field(default_factory=dict)


class EscrowOut(BaseModel):
    binding: str
    escrow_id: str
    hosts: list[str]
    kind: Literal["bearer", "header", "basic", "query"]
    name: str | None
    escrowed_at: datetime


class ExposureOut(BaseModel):
    hosts: list[str] = Field(description='"name" (port 443) or "name:port", exact names')
    variable: str = Field(description="The container variable holding a session's sentinel.")
    form: Literal["replace", "header", "basic"]
    template: str | None = Field(
        default=None, description='"Name: value {}" (header) or "user:{}" (basic).'
    )


class NewExposure(Strict):
    """Expose a binding to sandboxed sessions: brokered by their egress proxy for ``hosts``."""

    hosts: list[str] = Field(min_length=1, max_length=16)
    variable: str = Field(min_length=1, max_length=64)
    header: str | None = Field(
        default=None,
        max_length=1024,
        description='Set this header instead of replacing the sentinel, e.g. "Authorization:'
        ' Bearer {}".',
    )
    basic: str | None = Field(
        default=None,
        max_length=1024,
        description='Set Basic credentials from this "user:{}" template.',
    )


class BindingOut(BaseModel):
    name: str
    kind: str
    service: str
    identity: str
    created_at: datetime
    metadata: dict[str, str]
    escrow: EscrowOut | None = Field(
        default=None, description="Set when the enclave holds the secret (SPEC §12)."
    )
    exposure: ExposureOut | None = Field(
        default=None,
        description="Set when sandboxed sessions may have the binding brokered (ADR 0028).",
    )


class EscrowBinding(Strict):
    hosts: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The hosts the enclave may send the credential to; default: every host of"
        " the installed connectors that use the binding's service.",
    )


class AttachEnclave(Strict):
    url: str = Field(
        min_length=9, max_length=2048, pattern=r"^https://", description="https://HOST[:PORT]"
    )
    fingerprint: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 (hex) of the enclave's certificate"
    )
    registration_code: str = Field(min_length=1, max_length=200)
    measurement: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="expected code measurement"
    )


class EnclaveStatus(BaseModel):
    attached: bool
    url: str | None = None
    fingerprint: str | None = None
    provider: str | None = None
    debug: bool | None = None
    measurement: str | None = None
    client_id: str | None = None
    enclave_version: str | None = None
    attached_at: datetime | None = None
    escrows: list[EscrowOut]
    verified: bool | None = Field(
        default=None, description="A fresh attestation verified (only with verify=true)."
    )
    problem: str | None = None


class DetachEnclave(Strict):
    force: bool = False


class Detached(BaseModel):
    detached: bool
    unregistered: bool
    escrows_dropped: list[str]


class GrantBody(Strict):
    """Approve later requests like this one without asking (issue #20)."""

    lasts: str = Field(
        alias="for",
        pattern=r"^(session|[0-9]{1,7}[smh])$",
        description='"session" (the rest of the approval\'s session) or "<N>s|m|h"',
    )
    match: dict[str, str] = Field(
        default_factory=dict,
        max_length=64,
        description="argument → glob its value may match (others must equal the approved ones)",
    )


class Decision(Strict):
    approved: bool
    reason: str | None = Field(default=None, max_length=1000)
    grant: GrantBody | None = Field(default=None, description="approve only")


class GrantOut(BaseModel):
    id: str
    kind: Literal["action", "operation"]
    target: str
    args: dict[str, Any]
    match: dict[str, str]
    plan_sha256: str | None
    approval_id: str
    granted_by: str
    created_at: datetime
    session_id: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


class ApprovalStepOut(BaseModel):
    """One connector operation an approval would run: what the deciding human is shown."""

    connector: str
    operation: str
    origins: list[str] = Field(description="scheme://host:port the request may go to")
    binding: str | None = Field(description="the binding whose credential it carries")


class ApprovalOut(BaseModel):
    id: str
    kind: Literal["action", "operation"]
    target: str
    args: dict[str, Any]
    args_sha256: str
    created_at: datetime
    session_id: str | None
    status: Literal["pending", "approved", "denied", "running", "succeeded", "failed", "expired"]
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    result: Any
    error: dict[str, Any] | None
    audit_id: str | None
    plan_sha256: str | None = Field(
        default=None, description="digest of what will run; a change makes the approval stale"
    )
    plan_parts: dict[str, str] = Field(default_factory=dict)
    steps: list[ApprovalStepOut] = Field(default_factory=list)
    link: str | None = Field(
        default=None, description="its web page: http://127.0.0.1:PORT/ui/approvals/ID"
    )


class NewEgress(Strict):
    allow: list[str] = Field(
        default_factory=list,
        max_length=256,
        description='This session\'s extra allow entries ("host", "host:port", "*.domain"),'
        " added to `[sandbox] allow` of config.toml.",
    )
    expose: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Bindings brokered to this session (each exposed with `aileron binding"
        " expose`), added to `[sandbox] expose` of config.toml.",
    )


class BrokeredOut(ExposedOut):
    sentinel: str = Field(
        description="The value the container's variable holds; the proxy swaps in the secret."
    )


class EgressOut(BaseModel):
    session_id: str
    socket: str = Field(description="The egress proxy's Unix socket (0600).")
    allow: list[str] = Field(description="The effective allow-list, each entry canonical.")
    exposed: list[BrokeredOut] = Field(
        default_factory=list, description="The bindings the proxy brokers (ADR 0028)."
    )
    ca_file: str | None = Field(
        default=None,
        description="The session CA's certificate (ca.pem beside the socket) when it brokers.",
    )


class UsageTally(BaseModel):
    requests: int
    input: int = Field(description="Prompt tokens, cached ones included.")
    output: int
    cached: int = Field(description="Prompt tokens read from a cache (a part of input).")
    cost: float | None = Field(
        description="The priced requests' cost summed, in the price table's currency; null"
        " when no request of the group was priced."
    )
    unpriced_requests: int = Field(
        description="Requests that reported usage but matched no price (not in cost)."
    )
    unreported_requests: int = Field(
        description="Requests whose answer reported no usage (counted with 0 tokens)."
    )


class UsageGroup(UsageTally):
    key: str = Field(description='The model, agent, session or provider; "(none)" if absent.')


class UsageReportOut(BaseModel):
    since: datetime | None = Field(description="The first instant counted; null: all.")
    session: str | None
    by: Literal["model", "agent", "session", "provider"]
    groups: list[UsageGroup] = Field(
        description="Most expensive first, then most tokens (input + output)."
    )
    total: UsageTally


class ProviderOut(BaseModel):
    name: str = Field(description="The provider's gateway URL is /v1/gateway/NAME/….")
    kind: Literal["openai", "anthropic"] = Field(
        description="The API it speaks: its key's header, error shape and usage format."
    )
    base_url: str
    binding: str = Field(description="The binding that holds its key.")
    bound: bool = Field(description="Whether that binding exists.")
    models: dict[str, Any] = Field(
        description="The model policy: allow (globs, or null for every model), deny, and"
        " each agent's own rule under agents."
    )
    limits: dict[str, int | float] = Field(
        description="The limits set: requests_per_minute, session_tokens, session_cost,"
        " daily_tokens, daily_cost (absent: no limit)."
    )
