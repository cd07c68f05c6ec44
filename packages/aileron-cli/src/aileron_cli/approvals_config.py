"""How approvals reach the human: ``[approvals]`` in ``config.toml`` (issue #20).

::

    [approvals]
    webhook = "https://hooks.example.com/T000/B000/XXXX"   # POSTed for each new pending approval
    notify = true        # the daemon itself sends a desktop notification (default: false)

``webhook`` is an ``https://`` URL (``http://`` only to a loopback host: the URL of a chat
tool's webhook is itself a credential, never sent in clear over a network). The daemon POSTs
each new pending approval's summary to it — id, target, kind, session, agent, time and the
page's link, never the arguments — through its HTTP engine (proxies and CA roots of ADR 0025).

``notify`` makes the daemon send a desktop notification (``notify-send`` on Linux,
``osascript`` on macOS) for each new pending approval. It is off by default: a daemon started
in the background often has no display session to show one in, and ``aileron approval watch``
already notifies from the human's own session.

Policies (helper H4 of #20)::

    [approvals]
    expire_after = "30m"   # a pending approval nobody decided becomes `expired` (denied);
                           # "<N>s", "<N>m" or "<N>h"; "0" = never; default "30m"

    [[approvals.deny]]     # denied at once, without asking anyone
    target = "github.com/* repos delete"   # glob over the target: an action's name, or
                                           # "<connector fqn> <tool> <operation>"
    match = { branch = "main" }            # optional: argument → glob its value must match
    reason = "never delete main"           # optional: told to the agent, kept in the audit

An unknown key, or a value of the wrong type or form, is a ``ConfigError`` naming the setting
and the file.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from aileron_cli.config_file import read_settings
from aileron_core.errors import ConfigError

__all__ = [
    "ApprovalsConfig",
    "DenyRule",
    "load_approvals_config",
    "parse_approvals_config",
    "parse_duration",
]

SETTINGS = ("webhook", "notify", "expire_after", "deny")
"""The keys ``[approvals]`` accepts."""

MAX_WEBHOOK_CHARS = 2048
DEFAULT_EXPIRE_AFTER = timedelta(minutes=30)
DENY_KEYS = ("target", "match", "reason")
UNITS = {"s": 1, "m": 60, "h": 3600}
MAX_DURATION = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """``"<N>s"``, ``"<N>m"`` or ``"<N>h"`` (N a whole number from 1) as a ``timedelta``;
    ``ValueError`` naming the form for anything else."""
    number, unit = text[:-1], text[-1:]
    if unit not in UNITS or not number.isascii() or not number.isdigit() or int(number) < 1:
        raise ValueError(f'{text!r} is not a duration: write e.g. "90s", "30m" or "2h"')
    lasts = timedelta(seconds=int(number) * UNITS[unit])
    if lasts > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than a year")
    return lasts


@attrs.frozen
class DenyRule:
    """One ``[[approvals.deny]]``: requests whose target matches ``target`` (and each argument
    named in ``match`` its glob) are denied without asking."""

    index: int
    """Its place in config.toml, from 1 (how the audit names it: ``approvals.deny[1]``)."""
    target: str
    match: dict[str, str] = attrs.field(factory=dict)
    reason: str | None = None

    @property
    def name(self) -> str:
        return f"approvals.deny[{self.index}]"


@attrs.frozen
class ApprovalsConfig:
    """What ``[approvals]`` sets."""

    webhook: str | None = None
    """Where each new pending approval's summary is POSTed (``None``: nowhere)."""
    notify: bool = False
    """Whether the daemon sends desktop notifications itself."""
    expire_after: timedelta | None = DEFAULT_EXPIRE_AFTER
    """How long an approval may wait for a human before it expires (``None``: forever)."""
    expire_after_text: str = "30m"
    """``expire_after`` as written (how the audit names the rule)."""
    deny: tuple[DenyRule, ...] = ()


def load_approvals_config(config_path: Path) -> ApprovalsConfig:
    """The ``[approvals]`` settings of ``config.toml`` at ``config_path`` (defaults if absent)."""
    settings = read_settings(config_path)
    if settings is None:
        return ApprovalsConfig()
    return parse_approvals_config(settings, str(config_path))


def parse_approvals_config(settings: Mapping[str, Any], source: str) -> ApprovalsConfig:
    """Read the ``[approvals]`` table of parsed ``config.toml`` settings from ``source``."""
    table = settings.get("approvals", {})
    if not isinstance(table, dict):
        raise ConfigError(f"`approvals` in {source} must be a table")
    unknown = sorted(set(table) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"[approvals] in {source}: unknown setting {unknown[0]!r}",
            hint=f"settings are: {', '.join(SETTINGS)}",
        )
    notify = table.get("notify", False)
    if not isinstance(notify, bool):
        raise ConfigError(f"approvals.notify in {source} must be true or false, not {notify!r}")
    webhook = table.get("webhook")
    if webhook is not None:
        webhook = _webhook(webhook, f"approvals.webhook in {source}")
    expire_text = table.get("expire_after", "30m")
    where = f"approvals.expire_after in {source}"
    if not isinstance(expire_text, str):
        raise ConfigError(f'{where} must be a string such as "30m" or "0", not {expire_text!r}')
    try:
        expire_after = None if expire_text == "0" else parse_duration(expire_text)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}", hint='"0" means never') from error
    rules = table.get("deny", [])
    if not isinstance(rules, list):
        raise ConfigError(
            f"approvals.deny in {source} must be an array of tables ([[approvals.deny]])"
        )
    deny = tuple(_deny_rule(rule, index, source) for index, rule in enumerate(rules, start=1))
    return ApprovalsConfig(
        webhook=webhook,
        notify=notify,
        expire_after=expire_after,
        expire_after_text=expire_text,
        deny=deny,
    )


def _deny_rule(rule: object, index: int, source: str) -> DenyRule:
    where = f"approvals.deny[{index}] in {source}"
    if not isinstance(rule, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(rule) - set(DENY_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting {unknown[0]!r}", hint=f"settings are: {', '.join(DENY_KEYS)}"
        )
    target, match, reason = rule.get("target"), rule.get("match", {}), rule.get("reason")
    if not isinstance(target, str) or not target:
        raise ConfigError(f'{where} needs target = "<glob>" (an action name or operation)')
    if not isinstance(match, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in match.items()
    ):
        raise ConfigError(f'{where}: match must be a table of argument = "<glob>"')
    if reason is not None and not isinstance(reason, str):
        raise ConfigError(f"{where}: reason must be a string")
    return DenyRule(index=index, target=target, match=dict(match), reason=reason)


def _webhook(value: object, where: str) -> str:
    hint = 'write an https URL, e.g. "https://hooks.example.com/…"'
    if not isinstance(value, str) or not value or len(value) > MAX_WEBHOOK_CHARS:
        raise ConfigError(
            f"{where} must be a URL of at most {MAX_WEBHOOK_CHARS} characters", hint=hint
        )
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{where} has a space or control character", hint=hint)
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise ConfigError(f"{where} is not a URL: {error}", hint=hint) from error
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(f"{where} must be an https URL with a host", hint=hint)
    if parts.scheme == "http" and not _loopback(host):
        raise ConfigError(
            f"{where} is plain http to {host}: a webhook URL is a credential, sent only over"
            " https (http is accepted to a loopback host only)",
            hint=hint,
        )
    return value


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
