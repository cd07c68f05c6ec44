"""``aileron launch``: run a coding agent with Aileron wired in (SPEC §11).

:mod:`~aileron_cli.launch.agents` declares the agents and how each is wired;
:mod:`~aileron_cli.launch.host` runs one on the host; :mod:`~aileron_cli.launch.routing`
names the gateway URLs the agents' LLM traffic goes to.
"""

from __future__ import annotations

from aileron_cli.launch.agents import AGENTS, Agent, Invocation, LaunchContext, agent_named
from aileron_cli.launch.errors import (
    AgentNotInstalled,
    AgentSetupInvalid,
    AgentStartFailed,
    LaunchError,
    McpAdapterMissing,
    SandboxUnavailable,
    UnknownAgent,
)
from aileron_cli.launch.host import HostPlan, launch, prepare
from aileron_cli.launch.routing import llm_base_url

__all__ = [
    "AGENTS",
    "Agent",
    "AgentNotInstalled",
    "AgentSetupInvalid",
    "AgentStartFailed",
    "HostPlan",
    "Invocation",
    "LaunchContext",
    "LaunchError",
    "McpAdapterMissing",
    "SandboxUnavailable",
    "UnknownAgent",
    "agent_named",
    "launch",
    "llm_base_url",
    "prepare",
]
