"""The agent's sandbox image: ``aileron/sandbox-<agent>:<version>`` or the user's ``--image``.

The image is built from the ``Containerfile`` shipped in this package with three build
arguments per agent: the base image (overridable, so it can be one built locally), the
command that installs the agent in it, and the agent's command (the build fails if the
install did not provide it). ``--sandbox-build`` decides what happens when the image is
missing: ``auto`` builds it, ``always`` rebuilds it, ``never`` stops with an error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from typing import Literal

import attrs

from aileron_cli.__about__ import __version__
from aileron_cli.launch.errors import ImageBuildFailed, ImageUnavailable
from aileron_cli.sandbox.engine import PROBE_TIMEOUT, Engine, first_line

BuildPolicy = Literal["auto", "always", "never"]
BUILD_POLICIES: tuple[BuildPolicy, ...] = ("auto", "always", "never")
BASE_IMAGE_VAR = "AILERON_SANDBOX_BASE_IMAGE"
LABEL_AGENT = "io.aileron.agent"
LABEL_VERSION = "io.aileron.version"
NODE_BASE = "docker.io/library/node:22-bookworm-slim"


@attrs.frozen
class Recipe:
    """How an agent's image is made."""

    base: str
    install: str
    """A ``sh`` command run as root in the image that puts the agent's command on PATH."""


def _npm(package: str) -> str:
    return f"npm install -g {package} && npm cache clean --force"


RECIPES: Mapping[str, Recipe] = {
    "claude": Recipe(NODE_BASE, _npm("@anthropic-ai/claude-code")),
    "codex": Recipe(NODE_BASE, _npm("@openai/codex")),
    "opencode": Recipe(NODE_BASE, _npm("opencode-ai")),
    "goose": Recipe(
        "docker.io/library/debian:bookworm-slim",
        "apt-get update && apt-get install -y --no-install-recommends bzip2 ca-certificates"
        " curl tar && rm -rf /var/lib/apt/lists/*"
        " && curl -fsSL https://github.com/block/goose/releases/download/stable/download_cli.sh"
        " | CONFIGURE=false GOOSE_BIN_DIR=/usr/local/bin sh",
    ),
}


@attrs.frozen
class Image:
    """An image ready to run: its reference and the PATH it declares (``Config.Env``)."""

    ref: str
    env: tuple[str, ...]


def default_tag(agent: str) -> str:
    """``aileron/sandbox-<agent>:<version>``."""
    return f"aileron/sandbox-{agent}:{__version__}"


def base_image(agent: str, env: Mapping[str, str], override: str | None = None) -> str:
    """The base to build ``agent``'s image on: ``override``, else ``$AILERON_SANDBOX_BASE_IMAGE``,
    else the agent's usual one."""
    return override or env.get(BASE_IMAGE_VAR) or RECIPES[agent].base


# How engines say an image is not there (docker: "No such image"; podman: "image not known").
_MISSING = ("no such image", "image not known")


def inspect(engine: Engine, ref: str) -> Image | None:
    """``ref`` as the engine has it, or ``None`` when it has no such image."""
    argv = [*engine.call, "image", "inspect", ref]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ImageUnavailable(
            f"{engine.name} could not inspect image {ref}: {error}",
            hint=f"check `{engine.name} image inspect {ref}`",
        ) from error
    if done.returncode != 0:
        if any(words in done.stderr.lower() for words in _MISSING):
            return None
        raise ImageUnavailable(
            f"{engine.name} could not inspect image {ref}: {first_line(done.stderr)}",
            hint=f"check `{engine.name} image inspect {ref}`",
        )
    try:
        found = json.loads(done.stdout)
        env = found[0].get("Config", {}).get("Env") or []
    except (ValueError, LookupError, AttributeError, TypeError):
        raise ImageUnavailable(
            f"{engine.name} answered `image inspect {ref}` with something unexpected",
            hint=f"check `{engine.name} image inspect {ref}`",
        ) from None
    return Image(ref=ref, env=tuple(str(item) for item in env))


Progress = Callable[[str], None]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build(
    engine: Engine,
    agent: str,
    agent_command: str,
    *,
    base: str,
    progress: Progress = _to_stderr,
) -> Image:
    """Build ``agent``'s image from the shipped Containerfile, reporting each build line."""
    from python_on_whales.exceptions import DockerException

    tag = default_tag(agent)
    recipe = RECIPES[agent]
    if engine.name == "docker" and not _has_buildx(engine):
        # python-on-whales builds with `docker buildx build`; without the plugin nothing builds.
        raise ImageBuildFailed(
            "docker cannot build images here: its buildx plugin is not installed",
            hint="install docker's buildx plugin (e.g. the docker-buildx-plugin package),"
            " or use --sandbox=podman",
        )
    containerfile = resources.files("aileron_cli.sandbox").joinpath("Containerfile")
    progress(f"building {tag} with {engine.name} from {base} …")
    with resources.as_file(containerfile) as path:
        try:
            lines: Iterator[str] = engine.client().build(  # type: ignore[assignment]
                str(path.parent),
                file=str(path),
                tags=[tag],
                build_args={
                    "BASE_IMAGE": base,
                    "AGENT_INSTALL": recipe.install,
                    "AGENT_COMMAND": agent_command,
                },
                labels={LABEL_AGENT: agent, LABEL_VERSION: __version__},
                stream_logs=True,  # python-on-whales then returns the build's lines
            )
            for line in lines:
                progress(f"  {line.rstrip()}")
        except DockerException as error:
            raise ImageBuildFailed(
                f"building {tag} from {base} failed ({engine.name} exited {error.return_code})",
                hint="read the build output above; set the base with --base-image or"
                f" {BASE_IMAGE_VAR} if {base} cannot be pulled here",
            ) from error
    image = inspect(engine, tag)
    if image is None:
        raise ImageBuildFailed(
            f"{engine.name} reported a successful build but has no image {tag}",
            hint=f"check `{engine.name} images`",
        )
    progress(f"built {tag}")
    return image


def _has_buildx(engine: Engine) -> bool:
    """Whether docker's buildx plugin answers (``docker buildx version``)."""
    try:
        done = subprocess.run(
            [*engine.call, "buildx", "version"],
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def prepare(
    engine: Engine,
    agent: str,
    agent_command: str,
    *,
    image: str | None,
    policy: BuildPolicy,
    base: str,
    progress: Progress = _to_stderr,
) -> Image:
    """The image to run ``agent`` in, built first when the policy says so."""
    if image is not None:
        found = inspect(engine, image)
        if found is None:
            raise ImageUnavailable(
                f"{engine.name} has no image {image}",
                hint=f"build or pull it first (`{engine.name} pull {image}`), or drop --image"
                f" to use Aileron's {default_tag(agent)}",
            )
        return found
    tag = default_tag(agent)
    if policy == "always":
        return build(engine, agent, agent_command, base=base, progress=progress)
    found = inspect(engine, tag)
    if found is not None:
        return found
    if policy == "never":
        raise ImageUnavailable(
            f"{engine.name} has no image {tag} and --sandbox-build=never forbids building it",
            hint=f"run `aileron sandbox build {agent} --engine {engine.name}` first, or use"
            " --sandbox-build=auto",
        )
    return build(engine, agent, agent_command, base=base, progress=progress)
