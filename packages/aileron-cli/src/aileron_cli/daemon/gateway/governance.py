"""What the gateway lets a session do: which models it may name, how often, how much.

- **Model policy.** A provider's ``models.allow``/``models.deny`` globs, narrowed per agent
  (:class:`~aileron_cli.daemon.gateway.config.ModelPolicy`), decide on the model a request
  names: the ``model`` of a JSON body, or the ``model`` field of a form (multipart or
  url-encoded). The name must be unambiguous: a JSON body that names ``model`` twice at its top
  level is refused (a provider might read the other one than the gateway did). A request that
  names no model (``GET /v1/models``, a file upload) passes. With a policy in force the body is
  read whole before anything is sent (:data:`POLICY_BODY_LIMIT`), so a chunked body cannot
  slip a model past the check. A body is read as a lax provider would too: as JSON whatever
  its ``Content-Type`` says (and as the form it names: both readings must agree); a body that
  is neither (trailing data, invalid UTF-8, comments — which some servers accept) is refused
  rather than forwarded unread; and a model named anywhere inside the body (a message batch's
  requests, a realtime session) must pass the policy too. Under a cost budget the body is read
  the same way, and a model the price table does not cover is refused (it would cost nothing).
- **Rate and budgets** (:class:`Ledger`). Per session and provider: requests in the last 60
  seconds, tokens and cost; per provider and UTC day: tokens and cost over every session. A
  request is admitted against what is spent *before* it: the request that crosses a budget
  completes, the next is refused. Spending is charged from the usage the answer reports (or,
  when a budgeted provider's answer reports none, an estimate of a token per 4 bytes each way,
  so that omitting usage never makes a request free; an answer cut short — the agent hung up,
  even before the answer began — is charged at least the estimate of what was relayed, since
  a stream may report its output only in its last event). The ledger starts from the audit log's
  ``gateway.request`` records (the session's, and today's of the provider), so a daemon restart
  forgets nothing.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import email.utils
import json
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import attrs

from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.gateway.auth import GatewayRefused
from aileron_cli.daemon.gateway.config import GatewayConfig, Provider
from aileron_cli.daemon.gateway.usage import Usage

__all__ = [
    "POLICY_BODY_LIMIT",
    "Ledger",
    "check_model",
    "chargeable",
    "check_priced",
    "estimate",
    "named_model",
    "reads_model",
]

POLICY_BODY_LIMIT = 64 << 20
"""The largest request body read whole for a model policy (a bigger one is refused: 413)."""

RATE_WINDOW_S = 60.0
MAX_MODEL = 200


class AmbiguousModel(ValueError):
    """The body names ``model`` more than once."""


class UnreadableBody(ValueError):
    """The body is neither JSON nor the form its ``Content-Type`` names."""


class _Twice(dict[str, Any]):
    """A JSON object that named ``model`` more than once (refused when it is the body)."""


def _pairs_into(nested: list[str]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """json's hook for every object: marks one that names ``model`` twice, in any case (some
    providers' decoders match keys ignoring case, and which of two they keep is theirs to
    choose). json cannot say how deep an object is, so the mark is checked on the body alone;
    every model name a string of any object holds is added to ``nested`` (a batch's requests,
    a realtime session, a router's ``models`` fallback list: the policy checks them all)."""

    def pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        named: list[Any] = []
        for key, value in pairs:
            if 4 < len(key) < 7 and key[:5].lower() == "model":  # one cheap test for most keys
                if len(key) == 5:
                    named.append(value)
                    if isinstance(value, str):
                        nested.append(value)
                elif key[5] in "sS" and isinstance(value, list):  # a router's fallback list
                    nested.extend(name for name in value if isinstance(name, str))
        if len(named) > 1:
            return _Twice(pairs)
        document = dict(pairs)
        if named and "model" not in document:
            document["model"] = named[0]  # "Model": a decoder that ignores case reads it
        return document

    return pairs


def named_model(content_type: str, body: bytes) -> str | None:
    """The model a request body names (``None``: none); ``AmbiguousModel`` when it names two,
    ``UnreadableBody`` when it is neither JSON nor the form its ``Content-Type`` names.

    The body is read as JSON whatever the ``Content-Type`` says (many OpenAI-compatible
    servers parse JSON without looking at it), and also as the form the ``Content-Type``
    names; every reading that names a model must name the same one."""
    return _read(content_type, body)[0]


def _read(content_type: str, body: bytes) -> tuple[str | None, list[str]]:
    """:func:`named_model`'s model, and every model name nested in the JSON body."""
    nested: list[str] = []
    kind = content_type.partition(";")[0].strip().lower()
    if not body:
        return None, nested
    names: set[str] = set()
    form = kind in ("multipart/form-data", "application/x-www-form-urlencoded")
    if kind == "multipart/form-data":
        named = _form_model(content_type, body)
        names.update((named,) if named is not None else ())
    elif form:
        values = [v for k, v in parse_qsl(body.decode("latin-1")) if k == "model"]
        if len(values) > 1:
            raise AmbiguousModel
        names.update(values)
    try:
        document = json.loads(body, object_pairs_hook=_pairs_into(nested))
    except (ValueError, RecursionError):
        # Not JSON to Python, but maybe to a laxer provider (trailing data, invalid UTF-8,
        # comments): a body nobody here can read is not let past a policy unread.
        if not form:
            raise UnreadableBody from None
        document = None
    if isinstance(document, _Twice):
        raise AmbiguousModel
    model = document.get("model") if isinstance(document, dict) else None
    if model is not None:
        names.add(model if isinstance(model, str) else json.dumps(model))
    if len(names) > 1:
        raise AmbiguousModel
    return (names.pop() if names else None), nested


def _form_model(content_type: str, body: bytes) -> str | None:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if len(_params([content_type], "boundary")) > 1:
        raise AmbiguousModel  # parsers differ on which boundary counts (first, last)
    values: list[str] = []
    for part in message.iter_parts():
        raw = [str(v) for k, v in part.raw_items() if k.lower() == "content-disposition"]
        names = _params(raw, "name")
        if len(names) > 1:
            raise AmbiguousModel  # which name a part has is the provider's parser's choice
        if names == ["model"]:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                values.append(payload.decode("utf-8", "replace"))
    if len(values) > 1:
        raise AmbiguousModel
    return values[0] if values else None


def _params(headers: list[str], name: str) -> list[str]:
    """Every value of parameter ``name`` (any case) in the raw header values ``headers``, each
    one kept (the HTTP policy's parsed headers keep only the first of a name)."""
    found: list[str] = []
    for value in headers:
        holder = email.message.Message()
        holder["h"] = value
        params = holder.get_params(header="h") or []
        found += [email.utils.collapse_rfc2231_value(v) for k, v in params if k.lower() == name]
    return found


CREDENTIAL_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "openai": (
        "/realtime/client_secrets",
        "/realtime/sessions",
        "/realtime/transcription_sessions",
    ),
    "anthropic": (),
}
"""Paths (their ends) at which a provider hands out a credential of its own (an ephemeral
realtime key): the agent would use it directly, outside the gateway's policy, budgets and
audit, so the gateway never forwards them."""


def check_endpoint(provider: Provider, path: str) -> None:
    """``GatewayRefused`` (403) when ``path`` is one of :data:`CREDENTIAL_ENDPOINTS` of the
    provider's kind."""
    bare = path.rstrip("/").lower()
    if any(bare.endswith(end) for end in CREDENTIAL_ENDPOINTS[provider.kind]):
        raise GatewayRefused(
            "forbidden",
            f"the gateway does not forward {path}: it hands out a credential the agent would"
            " use around Aileron",
            reason="credential_endpoint",
            hint="use the API through the gateway with the session token",
        )


def check_model(provider: Provider, agent: str, content_type: str, body: bytes) -> str | None:
    """The model the request names, after the provider's policy for ``agent`` let it pass;
    ``GatewayRefused`` otherwise."""
    try:
        model, nested = _read(content_type, body)
    except AmbiguousModel:
        raise GatewayRefused(
            "invalid_request",
            "the request names `model` more than once",
            reason="ambiguous_model",
            hint="name the model once",
        ) from None
    except UnreadableBody:
        raise GatewayRefused(
            "invalid_request",
            "the gateway cannot read the model this request names: its body is not JSON (nor"
            " the form its Content-Type names)",
            reason="ambiguous_model",
            hint="send the body as the provider's SDK builds it",
        ) from None
    if isinstance(model, str) and len(model) > MAX_MODEL:
        raise GatewayRefused(
            "invalid_request", "the model name is too long", reason="ambiguous_model"
        )
    named = [model] if model is not None else []
    for name in dict.fromkeys([*named, *nested]):  # the body's own model first
        setting = provider.models.refuses(name[:MAX_MODEL], agent)
        if setting is not None:
            where = f"gateway.providers.{provider.name}.{setting}"
            raise GatewayRefused(
                "model_denied",
                f"the model {name[:MAX_MODEL]!r} is not allowed for {agent} by {where} in"
                " config.toml",
                reason="model_denied",
                hint="use a model the policy allows, or change the policy in config.toml",
                details={"model": name[:MAX_MODEL], "policy": where},
            )
    return model


def reads_model(provider: Provider) -> bool:
    """Whether a request to ``provider`` is read whole for the model it names before it is
    sent: under a model policy, and under a cost budget (which needs the model's price)."""
    limits = provider.limits
    costed = limits.session_cost is not None or limits.daily_cost is not None
    return provider.models.restricts or costed


def check_priced(config: GatewayConfig, provider: Provider, model: str | None) -> None:
    """Under a cost budget, refuse a model the price table does not cover (it would cost
    nothing against the budget); a request that names no model passes."""
    limits = provider.limits
    if model is None or (limits.session_cost is None and limits.daily_cost is None):
        return
    if config.price(provider.name, model) is None:
        where = f"gateway.prices.{provider.name}"
        raise GatewayRefused(
            "model_denied",
            f"the model {model!r} has no price in [{where}] of config.toml, and"
            f" gateway.providers.{provider.name}.limits sets a cost budget",
            reason="unpriced_model",
            hint=f'add a price for it (e.g. [{where}."{model}"] input = …, output = …)',
            details={"model": model, "policy": where},
        )


def estimate(bytes_sent: int, bytes_received: int) -> Usage:
    """A stand-in for the usage of an answer that reported none: a token per 4 bytes."""
    return Usage(input=bytes_sent // 4, output=bytes_received // 4)


def chargeable(
    reported: Usage | None, bytes_sent: int, bytes_received: int, *, whole: bool
) -> Usage:
    """What an answer is charged against a budget: the usage it reported; an estimate when it
    reported none; and when it ended early (the agent hung up, the provider broke off) at
    least the estimate of the output relayed, since a stream may report its output only at
    its end (Anthropic's ``message_delta``) and an agent could hang up just before."""
    guess = estimate(bytes_sent, bytes_received)
    if reported is None:
        return guess
    if whole:
        return reported
    return attrs.evolve(reported, output=max(reported.output, guess.output))


@attrs.define
class Spend:
    tokens: int = 0
    cost: float = 0.0


def _day(moment: float) -> date:
    return datetime.fromtimestamp(moment, UTC).date()


class Ledger:
    """Requests, tokens and cost per session and per provider-day (see the module docstring).

    ``clock`` gives the wall time (seconds since the epoch): the day boundary is UTC midnight.
    """

    def __init__(self, audit: AuditLog | None, clock: Callable[[], float] = time.time) -> None:
        self._audit = audit
        self._clock = clock
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self._session: dict[tuple[str, str], Spend] = {}
        self._daily: dict[tuple[str, date], Spend] = {}
        self._seeded_sessions: set[str] = set()
        self._seeded_days: set[date] = set()

    # --- what the audit log already holds ------------------------------------------------

    def _seed(self, session_id: str, now: float) -> None:
        today = _day(now)
        if self._audit is None:
            return
        if today not in self._seeded_days:
            self._seeded_days.add(today)
            start = datetime.combine(today, datetime.min.time(), UTC)
            for record in self._audit.list(type="gateway.request", since=start):
                self._count_daily(record.payload, today)
        if session_id not in self._seeded_sessions:
            self._seeded_sessions.add(session_id)
            for record in self._audit.list(type="gateway.request", session_id=session_id):
                self._count_session(record.payload, session_id, record.ts.timestamp(), now)

    @staticmethod
    def _spent(payload: dict[str, Any]) -> tuple[str, Spend] | None:
        provider = payload.get("provider")
        if not isinstance(provider, str):
            return None
        usage = payload.get("usage")
        tokens = 0
        if isinstance(usage, dict):
            tokens = sum(
                v for k, v in usage.items() if k in ("input", "output") and isinstance(v, int)
            )
        cost = payload.get("cost")
        return provider, Spend(tokens, float(cost) if isinstance(cost, int | float) else 0.0)

    def _count_daily(self, payload: dict[str, Any], day: date) -> None:
        spent = self._spent(payload)
        if spent is not None:
            total = self._daily.setdefault((spent[0], day), Spend())
            total.tokens += spent[1].tokens
            total.cost += spent[1].cost

    def _count_session(
        self, payload: dict[str, Any], session_id: str, at: float, now: float
    ) -> None:
        spent = self._spent(payload)
        if spent is None:
            return
        total = self._session.setdefault((session_id, spent[0]), Spend())
        total.tokens += spent[1].tokens
        total.cost += spent[1].cost
        if now - at < RATE_WINDOW_S:
            self._recent.setdefault((session_id, spent[0]), deque()).append(at)

    # --- admitting and charging ----------------------------------------------------------

    def admit(self, provider: Provider, session_id: str) -> None:
        """Count a request of ``session_id`` to ``provider``, or ``GatewayRefused`` (429) when
        a budget is spent or the rate limit reached."""
        limits = provider.limits
        if not limits.budgets and limits.requests_per_minute is None:
            return
        now = self._clock()
        self._seed(session_id, now)
        where = f"gateway.providers.{provider.name}.limits"
        session = self._session.get((session_id, provider.name), Spend())
        daily = self._daily.get((provider.name, _day(now)), Spend())
        midnight = datetime.combine(_day(now) + timedelta(days=1), datetime.min.time(), UTC)
        for spent, limit, setting, scope in (
            (session.tokens, limits.session_tokens, "session_tokens", "this session"),
            (session.cost, limits.session_cost, "session_cost", "this session"),
            (daily.tokens, limits.daily_tokens, "daily_tokens", "today (UTC)"),
            (daily.cost, limits.daily_cost, "daily_cost", "today (UTC)"),
        ):
            if limit is not None and spent >= limit:
                what = "tokens" if setting.endswith("tokens") else "cost"
                shown = f"{spent:,}" if what == "tokens" else f"{spent:.4f}"
                hint = (
                    "start a new session, or raise the budget in config.toml"
                    if scope == "this session"
                    else f"the daily budget renews at {midnight:%Y-%m-%d %H:%M} UTC, or raise it"
                    " in config.toml"
                )
                raise GatewayRefused(
                    "budget_exceeded",
                    f"the {provider.name} budget is spent: {scope} used {shown} {what} of the"
                    f" {limit} set by {where}.{setting}",
                    reason="budget_exceeded",
                    hint=hint,
                    details={"limit": f"{where}.{setting}", "spent": spent, "budget": limit},
                )
        rate = limits.requests_per_minute
        if rate is None:
            return
        recent = self._recent.setdefault((session_id, provider.name), deque())
        while recent and now - recent[0] >= RATE_WINDOW_S:
            recent.popleft()
        if len(recent) >= rate:
            wait = RATE_WINDOW_S - (now - recent[0])
            raise GatewayRefused(
                "rate_limited",
                f"this session sent {len(recent)} requests to {provider.name} in the last"
                f" minute, the limit set by {where}.requests_per_minute",
                reason="rate_limited",
                hint=f"wait {wait:.0f} s",
                details={"limit": f"{where}.requests_per_minute", "retry_after": wait},
            )
        recent.append(now)

    def charge(self, provider: Provider, session_id: str, usage: Usage, cost: float | None) -> None:
        """Add one answer's usage (and cost) to the session's and the day's spending."""
        if not provider.limits.budgets and provider.limits.requests_per_minute is None:
            return
        now = self._clock()
        for total in (
            self._session.setdefault((session_id, provider.name), Spend()),
            self._daily.setdefault((provider.name, _day(now)), Spend()),
        ):
            total.tokens += usage.total
            total.cost += cost or 0.0
