"""Which of Aileron's own environment variables reach the processes the CLI starts (ADR 0018).

Aileron's variables are configuration and credentials *of the CLI*: ``AILERON_VAULT_PASSPHRASE``
unlocks the vault, ``AILERON_TOKEN`` may be the master token, ``AILERON_HOME`` says where the
vault lives. A process the CLI starts gets none of them unless it is named here as one that
needs it: the auto-spawned daemon keeps its home and debugging switches, an agent gets only its
session's coordinates (:mod:`aileron_cli.launch.environment`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

PREFIX = "AILERON_"

DAEMON_VARIABLES = frozenset(
    {
        "AILERON_HOME",  # where the daemon's state lives (aileron_core.paths)
        "AILERON_DEBUG",  # tracebacks on errors (aileron_cli.cli.errors)
        "AILERON_TEST_DAEMON_VERSION",  # the tests' version override (daemon.server)
    }
)
"""The Aileron variables an auto-spawned daemon reads; every other one stays with the CLI."""


def without_aileron_variables(
    inherited: Mapping[str, str], *, keep: Collection[str] = ()
) -> dict[str, str]:
    """``inherited`` without any ``AILERON_*`` variable but those named in ``keep``."""
    return {
        name: value
        for name, value in inherited.items()
        if not name.startswith(PREFIX) or name in keep
    }


def daemon_environment(inherited: Mapping[str, str]) -> dict[str, str]:
    """The environment of a daemon the CLI spawns: no passphrase, no token, no API override."""
    return without_aileron_variables(inherited, keep=DAEMON_VARIABLES)
