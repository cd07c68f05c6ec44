"""Running agents in containers (SPEC §11, ``--sandbox=auto|docker|podman``).

:mod:`~aileron_cli.sandbox.engine` finds a container engine that answers;
:mod:`~aileron_cli.sandbox.images` prepares the agent's image from the Containerfile shipped
in this package; :mod:`~aileron_cli.sandbox.container` describes one container run (mounts,
environment, network) as data and turns it into the engine's arguments;
:mod:`~aileron_cli.sandbox.launch` is the whole sandboxed launch. ADR 0011 records the design.
"""
