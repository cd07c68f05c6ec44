"""``aileron sandbox check AGENT``: the pre-launch checks, without a launch.

The same check container ``aileron launch --sandbox`` runs, with the current directory as
the workspace, an empty tools file and no session (the checks need neither the daemon nor a
token). It also forgets the passes launches recorded for this image
(:mod:`aileron_cli.sandbox.check_cache`), so the next launch checks again. The image is never
built here; a missing one is an error saying how to build it. A current directory launch would
refuse (it holds Aileron's state) is refused here the same way, and the report shows the
container's hardening.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aileron_cli.launch.agents import Agent
from aileron_cli.launch.errors import ImageUnavailable
from aileron_cli.sandbox import images
from aileron_cli.sandbox.check_cache import CheckCache
from aileron_cli.sandbox.config import load_sandbox_config
from aileron_cli.sandbox.container import (
    HOME,
    SHIM_DIR,
    TOOLS_FILE,
    WORKSPACE,
    hardening,
    image_path,
)
from aileron_cli.sandbox.engine import detect
from aileron_cli.sandbox.launch import run_check, staged_spec
from aileron_cli.sandbox.workspace import refuse_unsafe_workspace
from aileron_core.paths import Layout


def check_image(
    agent: Agent, env: Mapping[str, str], *, engine_mode: str, image: str | None
) -> dict[str, Any]:
    """Run the checks for ``agent``'s image; what was checked (raises on a failure)."""
    cwd = os.getcwd()
    layout = Layout()
    refuse_unsafe_workspace(Path(cwd), layout)
    settings = load_sandbox_config(layout.config)
    engine = detect(engine_mode, env)
    ref = image or images.default_tag(agent.name, env)
    found = images.inspect(engine, ref)
    if found is None:
        raise ImageUnavailable(
            f"{engine.name} has no image {ref}",
            hint=f"build it with `aileron sandbox build {agent.name} --engine {engine.name}`"
            if image is None
            else f"build or pull {ref} first",
        )
    # A check asked for by name is a re-check: the launches of this image check again too.
    CheckCache.load(layout.home).forget(image_id=found.id or None)
    with tempfile.TemporaryDirectory(prefix="aileron-sandbox-check-") as scratch:
        spec = staged_spec(
            Path(scratch),
            engine,
            tools_txt="",
            shims={},
            env={
                "HOME": HOME,
                "PATH": f"{image_path(found.env)}:{SHIM_DIR}",
                "AILERON_TOOLS_FILE": TOOLS_FILE,
                "AILERON_WORKSPACE": WORKSPACE,
            },
            image=found.ref,
            command=(agent.command,),
            cwd=cwd,
            network="none",
            name=f"aileron-{agent.name}-check-{os.getpid()}",
            settings=settings,
        )
        run_check(engine, spec, agent.command)
    return {
        "engine": f"{engine.name} {engine.version}",
        "image": found.ref,
        "workspace": f"{cwd} (writable)",
        "agent": f"{agent.command} found",
        "http client": "curl or wget found",
        **hardening(spec),
        "result": "ok",
    }
