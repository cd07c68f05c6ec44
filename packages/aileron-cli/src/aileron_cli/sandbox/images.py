"""The agent's sandbox image: ``aileron/sandbox-<agent>:<version>`` or the user's ``--image``.

The image is built from the ``Containerfile`` shipped in this package, in a temporary build
context that also holds the CA certificates given with ``--ca-cert``, with build arguments per
agent: the base image (overridable, so it can be one built locally), the command that installs
the agent in it (``@openai/codex@<pin>`` when ``[sandbox.pins]`` pins it), the agent's command
(the build fails if the install did not provide it), a refresh token that changes only on
``--refresh``, and the host's proxy variables (build arguments only: never in the image's ENV
nor in the running container). ``--sandbox-build`` decides what happens when the image is
missing: ``auto`` builds it (and rebuilds an image whose agent version is not the pinned one),
``always`` rebuilds it with a fresh install of the agent, ``never`` stops with an error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Literal

import attrs

from aileron_cli.__about__ import __version__
from aileron_cli.launch.errors import ImageBuildFailed, ImageUnavailable
from aileron_cli.sandbox.build_failure import diagnose
from aileron_cli.sandbox.engine import PROBE_TIMEOUT, Engine, first_line

BuildPolicy = Literal["auto", "always", "never"]
BUILD_POLICIES: tuple[BuildPolicy, ...] = ("auto", "always", "never")
BASE_IMAGE_VAR = "AILERON_SANDBOX_BASE_IMAGE"
LABEL_AGENT = "io.aileron.agent"
LABEL_VERSION = "io.aileron.version"
LABEL_AGENT_VERSION = "io.aileron.agent-version"
"""The agent version the image was built with: its pin, or ``latest`` when unpinned."""
LABEL_REFRESH = "io.aileron.refresh"
"""The refresh token of the agent's install step (a build without ``--refresh`` reuses it)."""
REPOSITORY_VAR = "AILERON_SANDBOX_REPOSITORY"
"""Where Aileron's images are tagged (default ``aileron``): tests point it at a test-only one."""
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")
"""The host's proxy variables a build passes on (predefined build arguments on both engines)."""
UNPINNED = "latest"
NODE_BASE = "docker.io/library/node:22-bookworm-slim"


@attrs.frozen
class Recipe:
    """How an agent's image is made."""

    base: str
    install: str
    """A ``sh`` command run as root in the image that puts the agent's command on PATH."""
    package: str | None = None
    """The npm package, for the agents a version pin applies to."""

    def install_command(self, pin: str | None) -> str:
        """:attr:`install`, or the npm install of ``package@pin``."""
        if pin is None:
            return self.install
        if self.package is None:
            raise ImageBuildFailed(
                "this agent's version cannot be pinned (it is not installed from npm)",
                hint="remove its entry from [sandbox.pins] in config.toml",
            )
        return _npm(f"{self.package}@{pin}")


def _npm(package: str) -> str:
    return f"npm install -g {package} && npm cache clean --force"


def _npm_recipe(package: str) -> Recipe:
    return Recipe(NODE_BASE, _npm(package), package)


RECIPES: Mapping[str, Recipe] = {
    "claude": _npm_recipe("@anthropic-ai/claude-code"),
    "codex": _npm_recipe("@openai/codex"),
    "opencode": _npm_recipe("opencode-ai"),
    "goose": Recipe(
        "docker.io/library/debian:bookworm-slim",
        "apt-get update && apt-get install -y --no-install-recommends bzip2 ca-certificates"
        " curl tar && rm -rf /var/lib/apt/lists/*"
        " && curl -fsSL https://github.com/block/goose/releases/download/stable/download_cli.sh"
        " | CONFIGURE=false GOOSE_BIN_DIR=/usr/local/bin sh",
    ),
}


PINNABLE_AGENTS = frozenset(name for name, recipe in RECIPES.items() if recipe.package)
"""The agents ``[sandbox.pins]`` may name."""


@attrs.frozen
class Image:
    """An image ready to run: its reference, the PATH it declares (``Config.Env``) and its
    labels."""

    ref: str
    env: tuple[str, ...]
    labels: Mapping[str, str] = attrs.field(factory=dict)
    id: str = ""
    """The engine's immutable image ID (``sha256:…``): a rebuilt image, or another image under
    the same tag, has another one."""

    @property
    def agent_version(self) -> str | None:
        """The agent version Aileron built it with (see :data:`LABEL_AGENT_VERSION`)."""
        return self.labels.get(LABEL_AGENT_VERSION)


def default_tag(agent: str, env: Mapping[str, str] | None = None) -> str:
    """``aileron/sandbox-<agent>:<version>`` (``$AILERON_SANDBOX_REPOSITORY`` replaces
    ``aileron``)."""
    repository = (env or {}).get(REPOSITORY_VAR) or "aileron"
    return f"{repository.rstrip('/')}/sandbox-{agent}:{__version__}"


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
        config = found[0].get("Config", {})
        env = config.get("Env") or []
        labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
        image_id = str(found[0].get("Id") or "")
    except (ValueError, LookupError, AttributeError, TypeError):
        raise ImageUnavailable(
            f"{engine.name} answered `image inspect {ref}` with something unexpected",
            hint=f"check `{engine.name} image inspect {ref}`",
        ) from None
    return Image(ref=ref, env=tuple(str(item) for item in env), labels=labels, id=image_id)


Progress = Callable[[str], None]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@attrs.frozen
class BuildOptions:
    """How to build an agent's image: where, on what, with which agent version, trusting which
    CA certificates and through which proxy and network."""

    tag: str
    base: str
    pin: str | None = None
    """The agent version ``[sandbox.pins]`` asks for, or ``None`` for npm's latest."""
    ca_certs: tuple[Path, ...] = ()
    """PEM files the build (and the image's system store) must trust: ``--ca-cert``."""
    proxy: tuple[tuple[str, str], ...] = ()
    """The host's proxy variables, passed as build arguments only."""
    network: str | None = None
    """The engine network the build runs on: ``--build-network``."""
    refresh: bool = False
    """Install the agent anew instead of reusing the cached install step."""


def build_options(
    agent: str,
    env: Mapping[str, str],
    *,
    pins: Mapping[str, str],
    base: str | None = None,
    ca_certs: tuple[Path, ...] = (),
    network: str | None = None,
    refresh: bool = False,
) -> BuildOptions:
    """The options for ``agent`` from the environment, ``[sandbox.pins]`` and the flags."""
    return BuildOptions(
        tag=default_tag(agent, env),
        base=base_image(agent, env, base),
        pin=pins.get(agent),
        ca_certs=ca_certs,
        proxy=tuple((name, env[name]) for name in PROXY_VARS if env.get(name)),
        network=network,
        refresh=refresh,
    )


def build(
    engine: Engine,
    agent: str,
    agent_command: str,
    options: BuildOptions,
    *,
    progress: Progress = _to_stderr,
) -> Image:
    """Build ``agent``'s image from the shipped Containerfile, reporting each build line."""
    from python_on_whales.exceptions import DockerException

    tag, base = options.tag, options.base
    install = RECIPES[agent].install_command(options.pin)
    if engine.name == "docker" and not _has_buildx(engine):
        # python-on-whales builds with `docker buildx build`; without the plugin nothing builds.
        raise ImageBuildFailed(
            "docker cannot build images here: its buildx plugin is not installed",
            hint="install docker's buildx plugin (e.g. the docker-buildx-plugin package),"
            " or use --sandbox=podman",
        )
    refresh = _refresh_token(engine, tag, options.refresh)
    recent: deque[str] = deque(maxlen=400)
    with tempfile.TemporaryDirectory(prefix="aileron-build-") as scratch:
        context = _build_context(Path(scratch), options.ca_certs)
        pinned = f" ({agent} {options.pin})" if options.pin else ""
        progress(f"building {tag}{pinned} with {engine.name} from {base} …")
        try:
            lines: Iterator[str] = engine.client().build(  # type: ignore[assignment]
                str(context),
                file=str(context / "Containerfile"),
                tags=[tag],
                build_args={
                    "BASE_IMAGE": base,
                    "AGENT_INSTALL": install,
                    "AGENT_COMMAND": agent_command,
                    "AGENT_REFRESH": refresh,
                    **dict(options.proxy),
                },
                labels={
                    LABEL_AGENT: agent,
                    LABEL_VERSION: __version__,
                    LABEL_AGENT_VERSION: options.pin or UNPINNED,
                    LABEL_REFRESH: refresh,
                },
                network=options.network,
                stream_logs=True,  # python-on-whales then returns the build's lines
            )
            for line in lines:
                recent.append(line)
                progress(f"  {line.rstrip()}")
        except DockerException as error:
            for text in (error.stdout, error.stderr):
                if isinstance(text, str):
                    recent.extend(text.splitlines())
            failure = diagnose(recent)
            what = f": {failure.summary}" if failure.summary else ""
            raise ImageBuildFailed(
                f"building {tag} from {base} failed ({engine.name} exited {error.return_code})"
                + what,
                hint=failure.hint(base=base, base_var=BASE_IMAGE_VAR),
            ) from error
    image = inspect(engine, tag)
    if image is None:
        raise ImageBuildFailed(
            f"{engine.name} reported a successful build but has no image {tag}",
            hint=f"check `{engine.name} images`",
        )
    progress(f"built {tag}")
    return image


def _refresh_token(engine: Engine, tag: str, refresh: bool) -> str:
    """A new token to install the agent anew, else the current image's (so its cached install
    step is reused, never an older one)."""
    if refresh:
        return str(time.time_ns())
    current = inspect(engine, tag)
    return "" if current is None else current.labels.get(LABEL_REFRESH, "")


def _build_context(directory: Path, ca_certs: tuple[Path, ...]) -> Path:
    """``directory`` holding the Containerfile and ``ca/`` with each certificate as a ``.crt``
    (the name ``update-ca-certificates`` reads)."""
    containerfile = resources.files("aileron_cli.sandbox").joinpath("Containerfile")
    (directory / "Containerfile").write_bytes(containerfile.read_bytes())
    ca = directory / "ca"
    ca.mkdir()
    (ca / "README").write_text("CA certificates given with `aileron sandbox build --ca-cert`.\n")
    for index, cert in enumerate(ca_certs):
        text = _pem(cert)
        (ca / f"aileron-{index:02d}-{cert.stem}.crt").write_text(text.rstrip("\n") + "\n")
    return directory


def _pem(cert: Path) -> str:
    """The text of a PEM certificate file; ``ImageBuildFailed`` when it is not one."""
    try:
        text = cert.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise ImageBuildFailed(
            f"cannot read CA certificate {cert}: {error}",
            hint="pass --ca-cert a PEM file (-----BEGIN CERTIFICATE-----)",
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ImageBuildFailed(
            f"{cert} is not a PEM certificate (no -----BEGIN CERTIFICATE----- line)",
            hint="convert it with `openssl x509 -inform der -in CERT -out CERT.pem`",
        )
    return text


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
    options: BuildOptions,
    progress: Progress = _to_stderr,
) -> Image:
    """The image to run ``agent`` in, built first when the policy says so: ``always`` installs
    the agent anew; ``auto`` builds a missing image and rebuilds one whose agent version is not
    the pinned one."""
    if image is not None:
        found = inspect(engine, image)
        if found is None:
            raise ImageUnavailable(
                f"{engine.name} has no image {image}",
                hint=f"build or pull it first (`{engine.name} pull {image}`), or drop --image"
                f" to use Aileron's {options.tag}",
            )
        return found
    tag = options.tag
    if policy == "always":
        return build(
            engine, agent, agent_command, attrs.evolve(options, refresh=True), progress=progress
        )
    found = inspect(engine, tag)
    stale = found is not None and options.pin is not None and found.agent_version != options.pin
    if found is not None and not stale:
        return found
    if found is not None:
        progress(
            f"{tag} is stale: it has {agent} {found.agent_version or 'of an unknown version'},"
            f" config.toml pins {options.pin}"
        )
    if policy == "never":
        problem = f"image {tag} is stale" if found is not None else f"no image {tag}"
        raise ImageUnavailable(
            f"{engine.name} has {problem} and --sandbox-build=never forbids building it",
            hint=f"run `aileron sandbox build {agent} --engine {engine.name}` first, or use"
            " --sandbox-build=auto",
        )
    return build(engine, agent, agent_command, options, progress=progress)
