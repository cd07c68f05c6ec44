"""``generate``: connectors and actions → ``tools.txt``, the shims, and what was skipped.

Pure and deterministic: no files, environment, network or clock; the same connectors and
actions, in any order, give the same bytes. The caller writes ``tools_txt`` to
``/etc/aileron/tools.txt`` and each shim to ``/opt/aileron/bin/<tool>`` (mode 0755).
"""

from __future__ import annotations

from collections.abc import Sequence

from aileron_shims.model import Action, Connector, ShimSet
from aileron_shims.plan import build_plan
from aileron_shims.render import shim, tools_txt


def generate(
    connectors: Sequence[Connector], actions: Sequence[Action], *, agent_command: str
) -> ShimSet:
    """The shims of ``connectors`` and (enabled) ``actions`` for an agent run as ``agent_command``.

    Raises ``ShimError`` for input it cannot turn into shims (a control character in a name, a
    spec-derived tool with a reserved name…); what it leaves out instead is in ``skipped``.
    """
    plan = build_plan(connectors, actions, agent_command=agent_command)
    shims = {tool.name: shim(tool) for tool in sorted(plan.tools, key=lambda t: t.name)}
    return ShimSet(tools_txt=tools_txt(plan), shims=shims, skipped=plan.skipped)
