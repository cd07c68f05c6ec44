"""``/v1/sessions``: register a launched agent, mint its token, give it a listener, end it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from aileron_cli.daemon.access.peers import PEER_SCOPE_KEY, ConnectionPeer
from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.egress.proxies import EgressProxy
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.listeners import API_SOCKET, SessionListeners
from aileron_cli.daemon.http.schemas import (
    BrokeredOut,
    CreatedSession,
    EgressOut,
    EndSession,
    ListenerAddress,
    ListenerOut,
    NewAgentProcess,
    NewEgress,
    NewListener,
    NewSession,
    SessionOut,
)
from aileron_cli.sandbox.config import AllowEntry, load_sandbox_config, parse_allow_entry
from aileron_core.convert import converter
from aileron_core.errors import ConfigError
from aileron_core.models import SandboxInfo, Session, SessionExposure
from aileron_core.processes import ProcessRef, parent_of

if TYPE_CHECKING:
    from aileron_cli.daemon.egress.broker import Broker, Brokered

router = APIRouter(prefix="/sessions", tags=["sessions"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]
SessionId = Annotated[str, Path(min_length=1, max_length=64)]


def _out(session: Session, listeners: SessionListeners) -> SessionOut:
    out = SessionOut.model_validate(converter.unstructure(session))
    listener = listeners.get(session.id)
    if listener is not None:
        path = None if listener.path is None else str(listener.path)
        out.listener = ListenerAddress(host=listener.host, port=listener.port, socket=path)
    return out


def _peer_process(request: Request) -> ProcessRef | None:
    peer: ConnectionPeer | None = request.scope.get(PEER_SCOPE_KEY)
    if peer is None or peer.transport != "unix" or peer.pid <= 0:
        return None
    return ProcessRef.of(peer.pid)


@router.post("", response_model=CreatedSession, status_code=201)
async def create_session(
    body: NewSession,
    request: Request,
    sessions: deps.Sessions,
    life: deps.SessionLife,
    tokens: deps.Tokens,
    listeners: deps.Listeners,
    audit: deps.Audit,
    who: Admin,
) -> CreatedSession:
    """Register a session and mint its token (capabilities: actions, approvals, gateway).

    With ``contain``, the calling process (over the Unix socket) becomes the session's
    launcher: every process below it is the agent's and is refused the master token, and the
    session ends when the launcher dies (SPEC §16)."""
    sandbox = SandboxInfo(body.sandbox.runtime, body.sandbox.image) if body.sandbox else None
    launcher = _peer_process(request) if body.contain else None
    if body.contain and launcher is None:
        raise DaemonError(
            "invalid_request",
            "`contain` needs the calling process: send the request over the daemon's Unix socket",
        )
    session = sessions.create(body.agent, body.working_dir, sandbox, launcher)
    life.guard(session)
    token = tokens.mint_session_token(session.id)
    await audit.record(
        "session.started",
        who.actor,
        session.id,
        agent=session.agent,
        working_dir=session.working_dir,
        sandbox=converter.unstructure(sandbox),
        launcher_pid=launcher.pid if launcher else None,
    )
    return CreatedSession(**_out(session, listeners).model_dump(), token=token)


@router.get("", response_model=list[SessionOut])
async def list_sessions(
    sessions: deps.Sessions,
    listeners: deps.Listeners,
    _: Admin,
    active: bool | None = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> list[SessionOut]:
    """Sessions, oldest first (``limit`` keeps the most recent)."""
    found = sessions.list(active=active, agent=agent, limit=limit)
    return [_out(s, listeners) for s in found]


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(
    session_id: SessionId, sessions: deps.Sessions, listeners: deps.Listeners, _: Admin
) -> SessionOut:
    """One session."""
    return _out(sessions.get(session_id), listeners)


@router.post("/{session_id}/end", response_model=SessionOut)
async def end_session(
    session_id: SessionId,
    body: EndSession,
    life: deps.SessionLife,
    listeners: deps.Listeners,
    who: Admin,
) -> SessionOut:
    """End a session with its agent's exit code; its token dies and its listener closes."""
    session = await life.end(session_id, body.exit_code, who.actor)
    return _out(session, listeners)


@router.post("/{session_id}/agent", response_model=SessionOut)
async def register_agent(
    session_id: SessionId,
    body: NewAgentProcess,
    request: Request,
    sessions: deps.Sessions,
    listeners: deps.Listeners,
    _: Admin,
) -> SessionOut:
    """The launcher names its agent's process (a child of the launcher), so that the daemon
    can end what is left of the agent if the launcher dies. Only the session's launcher may."""
    session = sessions.running(session_id)
    caller = _peer_process(request)
    if session.launcher is None or caller != session.launcher:
        raise DaemonError("forbidden", "only the session's launcher may name its agent process")
    agent = ProcessRef.of(body.pid)
    if agent is None or parent_of(body.pid) != session.launcher.pid:
        raise DaemonError("invalid_request", f"process {body.pid} is not a child of the launcher")
    return _out(sessions.set_agent_process(session_id, agent), listeners)


@router.post(
    "/{session_id}/listener",
    response_model=ListenerOut,
    status_code=201,
    responses={200: {"model": ListenerOut, "description": "The listener was already open"}},
    response_model_exclude_none=True,
)
async def open_listener(
    session_id: SessionId,
    body: NewListener,
    request: Request,
    response: Response,
    sessions: deps.Sessions,
    listeners: deps.Listeners,
    layout: deps.Layout,
    audit: deps.Audit,
    who: Admin,
) -> ListenerOut:
    """Open the session's own listener on ``host`` (201), or return the open one (200).

    The daemon serves its API on a new socket at ``host``, on a free port, or with ``unix`` on
    the Unix socket ``api.sock`` (0600) in the session's run folder (0700; answered as
    ``socket`` and ``dir``), accepting only this session's token there (never the master
    token); it closes when the session ends, and a Unix socket is removed. 404 for an
    unknown session, 409 ``session_ended`` for one that is not running, 409 ``listener_exists``
    when the session listens on another address, 422 for a host that is not an IP address of
    this machine (``invalid_request``, ``listener_bind_failed``).
    """
    session = sessions.get(session_id)
    if session.state != "running":
        raise DaemonError("session_ended", f"session {session_id} is already {session.state}")
    if body.host is not None:
        listener, opened = await listeners.open(session_id, body.host, request.app)
    else:
        path = layout.run_dir(session_id) / API_SOCKET
        listener, opened = await listeners.open_unix(session_id, path, request.app)
    if sessions.get(session_id).state != "running":  # it ended while the server started
        listeners.close(session_id)
        raise DaemonError("session_ended", f"session {session_id} ended meanwhile")
    if opened:
        where: dict[str, object] = (
            {"host": listener.host, "port": listener.port}
            if listener.path is None
            else {"socket": str(listener.path)}
        )
        await audit.record("session.listener_opened", who.actor, session_id, **where)
    else:
        response.status_code = 200
    if listener.path is not None:
        return ListenerOut(
            session_id=session_id, socket=str(listener.path), dir=str(listener.path.parent)
        )
    return ListenerOut(
        session_id=session_id, host=listener.host, port=listener.port, url=listener.url
    )


@router.post(
    "/{session_id}/egress",
    response_model=EgressOut,
    status_code=201,
    responses={200: {"model": EgressOut, "description": "The proxy was already open"}},
)
async def open_egress(
    session_id: SessionId,
    body: NewEgress,
    response: Response,
    sessions: deps.Sessions,
    egress: deps.Egress,
    bindings: deps.Bindings,
    credentials: deps.Credentials,
    network: deps.Network,
    layout: deps.Layout,
    audit: deps.Audit,
    who: Admin,
) -> EgressOut:
    """Open the session's egress proxy (201), or return the open one as it is (200).

    The daemon serves an HTTP proxy (CONNECT for https, absolute-form for plain http) on the
    Unix socket ``egress.sock`` (0600) in the session's run folder, allowing ``[sandbox] allow``
    of config.toml plus ``allow`` and denying everything else; it closes when the session
    ends. Names pinned in ``[sandbox.resolve]`` resolve to their address only.

    It brokers the bindings of ``[sandbox] expose`` plus ``expose`` (ADR 0028): each gets a
    new sentinel (answered in ``exposed``, kept nowhere else), its hosts are allowed, and a
    CONNECT to one of them is intercepted with the session's CA (``ca_file``, beside the
    socket), the sentinel swapped for the binding's current secret. The session records which
    bindings it had (never a sentinel).

    404 for an unknown session or binding, 409 ``session_ended`` for one that is not running,
    412 ``binding_not_exposed`` for a binding without an exposure, 412 ``binding_required``
    when its secret cannot be had now (vault locked), 409 ``binding_escrowed`` for one the
    enclave holds, 422 ``invalid_request`` for a malformed entry (``invalid_config`` for a bad
    config.toml).
    """
    session = sessions.get(session_id)
    if session.state != "running":
        raise DaemonError("session_ended", f"session {session_id} is already {session.state}")
    existing = egress.get(session_id)
    if existing is not None:
        response.status_code = 200
        return _egress_out(session_id, existing)
    settings = load_sandbox_config(layout.config)
    entries = list(settings.allow_entries)
    for index, text in enumerate(body.allow):
        try:
            entries.append(parse_allow_entry(text, f"body.allow[{index}]"))
        except ConfigError as error:
            raise DaemonError(
                "invalid_request",
                str(error),
                hint=error.hint,
                details={"fields": [{"location": ["body", "allow", index], "problem": str(error)}]},
            ) from None
    brokered: list[Brokered] = []
    broker: Broker | None = None
    names = [*settings.expose, *body.expose]
    if names:
        # Imported on first use: the broker's TLS and HTTP machinery (cryptography's x509,
        # h11) would cost every daemon start tens of ms (B3).
        from aileron_cli.daemon.egress.broker import Broker
        from aileron_cli.daemon.run.brokering import brokered_for, secret_source

        brokered = await brokered_for(names, bindings, credentials)
        entries += _exposed_entries(brokered)
        broker = Broker(
            session_id,
            brokered,
            secrets=secret_source(brokered, bindings, credentials),
            upstream_tls=network.ssl_context(),
            sink=egress.sink_for(session_id),
        )
    proxy, opened = await egress.open(session_id, entries, broker=broker, pins=settings.resolve)
    if sessions.get(session_id).state != "running":  # it ended while the proxy started
        egress.close(session_id)
        raise DaemonError("session_ended", f"session {session_id} ended meanwhile")
    if opened:
        exposed = [
            SessionExposure(b.binding, b.exposure.variable, b.exposure.hosts) for b in brokered
        ]
        if exposed:
            sessions.set_exposed(session_id, exposed)
        await audit.record(
            "session.egress_opened",
            who.actor,
            session_id,
            socket=str(proxy.path),
            allow=proxy.allow,
            exposed=converter.unstructure(exposed),
        )
    else:
        response.status_code = 200
    return _egress_out(session_id, proxy)


def _exposed_entries(brokered: list[Brokered]) -> list[AllowEntry]:
    """An allow entry ``name:port`` for every host of every brokered binding."""
    return [
        AllowEntry(name, port) for item in brokered for name, port in item.exposure.host_ports()
    ]


def _egress_out(session_id: str, proxy: EgressProxy) -> EgressOut:
    brokered = proxy.broker.brokered if proxy.broker is not None else ()
    exposed = [
        BrokeredOut(
            binding=b.binding,
            variable=b.exposure.variable,
            hosts=list(b.exposure.hosts),
            sentinel=b.sentinel,
        )
        for b in brokered
    ]
    ca_file = None if proxy.ca_file is None else str(proxy.ca_file)
    return EgressOut(
        session_id=session_id,
        socket=str(proxy.path),
        allow=proxy.allow,
        exposed=exposed,
        ca_file=ca_file,
    )
