"""Telling the human that an approval waits, from the daemon (issue #20): the ``[approvals]
webhook`` and, with ``[approvals] notify = true``, a desktop notification.

:class:`ApprovalNotifier` follows the approval feed; for each approval it sees pending for the
first time it POSTs to the webhook (through the daemon's HTTP engine: the environment's proxies
and CA roots, ADR 0025) a JSON summary::

    {"id", "target", "kind", "session_id", "agent", "created_at", "link"}

— never the arguments, which may carry what the agent should not send to a chat tool. Each
notice runs in a task of its own, at most :data:`CONCURRENCY` at once: a slow or dead webhook
never holds the request (which is already answered 202) nor the feed. A webhook that fails
(no answer within :data:`TIMEOUT_S`, a refused connection, TLS, an answer that is not 2xx) is
logged — naming its host only, the URL being a credential — and audited
``approval.webhook_failed`` {approval_id, host, reason}.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from aileron_cli.approvals_config import ApprovalsConfig
from aileron_cli.daemon.access.sessions import SERVICE
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.store.approval_feed import ApprovalFeed
from aileron_cli.daemon.store.sessions import SessionStore
from aileron_cli.desktop_notify import notify, pending_text
from aileron_core.errors import AileronError
from aileron_core.http_engine import HttpEngine
from aileron_core.models import Approval
from aileron_core.network import Network

__all__ = ["CONCURRENCY", "TIMEOUT_S", "ApprovalNotifier", "webhook_payload"]

log = logging.getLogger("aileron.daemon")

TIMEOUT_S = 10.0
"""How long one webhook POST may take, connecting included."""
CONCURRENCY = 8
"""Notices sent at once; more wait their turn (each is one task, never the request's)."""
REMEMBERED = 4096
"""Approvals remembered as already announced (a pending approval saved again is not re-sent)."""


def webhook_payload(approval: Approval, agent: str | None, link: str) -> dict[str, Any]:
    """What the webhook receives for ``approval``: its summary, never its arguments."""
    return {
        "id": approval.id,
        "target": approval.target,
        "kind": approval.kind,
        "session_id": approval.session_id,
        "agent": agent,
        "created_at": approval.created_at.isoformat(),
        "link": link,
    }


class ApprovalNotifier:
    """Announces each new pending approval to the webhook and the desktop, as configured."""

    def __init__(
        self,
        config: ApprovalsConfig,
        *,
        feed: ApprovalFeed,
        sessions: SessionStore,
        audit: AuditLog,
        network: Network | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._config = config
        self._feed = feed
        self._sessions = sessions
        self._audit = audit
        self._link: Callable[[str], str] = str
        self._timeout_s = timeout_s
        self._timeout = httpx.Timeout(timeout_s)
        self._transport = transport
        self._network = network
        self._client: httpx.AsyncClient | None = None
        self._follower: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._turns = asyncio.Semaphore(CONCURRENCY)
        self._announced: OrderedDict[str, None] = OrderedDict()

    @property
    def active(self) -> bool:
        """Whether anything is configured to be told."""
        return self._config.webhook is not None or self._config.notify

    def start(self, link: Callable[[str], str]) -> None:
        """Follow the feed (on the running loop), if anything is configured; ``link`` makes an
        approval's page address from its id (the runner's, as the agent is told it)."""
        if not self.active or self._follower is not None:
            return
        self._link = link
        if self._config.webhook is not None:
            transport = self._transport or HttpEngine(
                max_connections=CONCURRENCY, max_idle=2, network=self._network
            )
            # trust_env off: the engine already applies the daemon's proxies and roots.
            self._client = httpx.AsyncClient(
                transport=transport, timeout=self._timeout, trust_env=False
            )
        self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def aclose(self) -> None:
        """Stop following; notices still being sent are cancelled."""
        tasks = [t for t in (self._follower, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._follower = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def settled(self) -> None:
        """Wait until the notices started so far are sent or have failed (for tests)."""
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    async def _follow(self) -> None:
        with self._feed.subscription() as changes:
            async for approval in changes:
                if approval is None or approval.status != "pending":
                    continue
                if approval.id in self._announced:
                    continue
                self._announced[approval.id] = None
                if len(self._announced) > REMEMBERED:
                    self._announced.popitem(last=False)
                task = asyncio.get_running_loop().create_task(self._announce(approval))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    async def _announce(self, approval: Approval) -> None:
        async with self._turns:
            agent = self._agent(approval.session_id)
            link = self._link(approval.id)
            if self._client is not None and self._config.webhook is not None:
                await self._post(self._config.webhook, webhook_payload(approval, agent, link))
            if self._config.notify:
                shown = {"id": approval.id, "target": approval.target, "agent": agent}
                shown["session_id"] = approval.session_id
                await asyncio.to_thread(notify, *pending_text(shown, link))

    def _agent(self, session_id: str | None) -> str | None:
        if session_id is None:
            return None
        try:
            return self._sessions.get(session_id).agent
        except AileronError:
            return None

    async def _post(self, url: str, payload: dict[str, Any]) -> None:
        assert self._client is not None
        try:
            async with asyncio.timeout(self._timeout_s):
                answer = await self._client.post(url, json=payload)
                await answer.aclose()
            failure = None if answer.is_success else f"answered {answer.status_code}"
        except TimeoutError:
            failure = f"no answer within {self._timeout_s:g} s"
        except httpx.HTTPError as error:
            failure = f"{type(error).__name__}: {error}"[:300]
        if failure is None:
            return
        host = urlsplit(url).hostname or "?"
        # The reason can quote the URL (httpx's messages do): keep only the host.
        failure = failure.replace(url, host)
        log.warning("approval %s: the webhook at %s failed: %s", payload["id"], host, failure)
        try:
            await self._audit.record(
                "approval.webhook_failed",
                SERVICE,
                payload["session_id"],
                approval_id=payload["id"],
                host=host,
                reason=failure,
            )
        except AileronError as error:  # a failing audit log is reported by the request path
            log.warning("could not audit the webhook failure: %s", error)
