"""Why ``aileron launch`` did not run an agent.

Every check that can fail runs before anything starts (no daemon spawned, no session
registered), except :class:`AgentStartFailed` and the sandbox's :class:`SandboxCheckFailed`,
which happen after the session exists; that session is then ended with a null exit code::

    AileronError
    └── LaunchError              launch_failed
        ├── UnknownAgent         unknown_agent          not one of claude, codex, goose, opencode
        ├── AgentNotInstalled    agent_not_installed    the agent's command is not on PATH
        ├── McpAdapterMissing    mcp_adapter_missing    no ``aileron-mcp`` to wire into the agent
        ├── SandboxUnavailable   sandbox_unavailable    no container engine answers
        ├── ImageUnavailable     image_unavailable      no sandbox image, and none may be built
        ├── ImageBuildFailed     image_build_failed     building the sandbox image failed
        ├── SandboxCheckFailed   sandbox_check_failed   a pre-run check in the container failed
        ├── UnsafeWorkspace      unsafe_workspace       the workspace is, holds or is inside a home
        ├── ToolsUnavailable     tools_unavailable      the container's shims cannot be made
        ├── AgentSetupInvalid    agent_setup_invalid    the wiring cannot be expressed safely
        ├── UnknownProvider      unknown_provider       --provider names no gateway provider
        ├── ProviderUnusable     provider_unusable      --provider's key is unbound, or the
        │                                               agent does not speak its kind
        └── AgentStartFailed     agent_start_failed     the agent's command could not be executed
"""

from __future__ import annotations

from aileron_core.errors import AileronError


class LaunchError(AileronError):
    """An agent could not be launched."""

    code = "launch_failed"


class UnknownAgent(LaunchError):
    code = "unknown_agent"


class AgentNotInstalled(LaunchError):
    code = "agent_not_installed"


class McpAdapterMissing(LaunchError):
    code = "mcp_adapter_missing"


class SandboxUnavailable(LaunchError):
    code = "sandbox_unavailable"


class AgentSetupInvalid(LaunchError):
    code = "agent_setup_invalid"


class AgentStartFailed(LaunchError):
    code = "agent_start_failed"


class ImageUnavailable(LaunchError):
    code = "image_unavailable"


class ImageBuildFailed(LaunchError):
    code = "image_build_failed"


class SandboxCheckFailed(LaunchError):
    code = "sandbox_check_failed"


class UnsafeWorkspace(LaunchError):
    code = "unsafe_workspace"


class ToolsUnavailable(LaunchError):
    code = "tools_unavailable"


class UnknownProvider(LaunchError):
    code = "unknown_provider"


class ProviderUnusable(LaunchError):
    code = "provider_unusable"
