"""Which ``[[approvals.deny]]`` rule of ``config.toml`` refuses a request (issue #20).

A rule matches when its ``target`` glob matches the request's target (an action's name, or
``"<connector fqn> <tool> <operation>"``) and every argument its ``match`` names is present
and matches its glob (``fnmatch``, case-sensitive; a value that is not a string is matched as
its canonical JSON, as grants do). The first matching rule, in file order, decides.

Rules apply to requests that need approval: they decide instead of the human. A run that
needs no approval never asks, so no rule sees it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from aileron_cli.approvals_config import DenyRule
from aileron_cli.daemon.store.grants import value_text

__all__ = ["DenyRule", "denying_rule"]


def denying_rule(
    rules: Sequence[DenyRule], target: str, args: Mapping[str, Any]
) -> DenyRule | None:
    """The first rule that refuses ``target`` with ``args``, if any."""
    for rule in rules:
        if fnmatch.fnmatchcase(target, rule.target) and all(
            name in args and fnmatch.fnmatchcase(value_text(args[name]), glob)
            for name, glob in rule.match.items()
        ):
            return rule
    return None
