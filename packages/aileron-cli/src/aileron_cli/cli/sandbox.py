"""``aileron sandbox build|check AGENT``: the images ``aileron launch --sandbox`` runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from aileron_cli.cli.common import add_json_flag, print_fields, print_json
from aileron_cli.cli.launch import AGENT_NAMES

ENGINE_MODES = ("auto", "docker", "podman")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "sandbox",
        help="Build and check agent sandbox images.",
        description=(
            "The images `aileron launch --sandbox` runs agents in:"
            " aileron/sandbox-AGENT:VERSION, built from the Containerfile shipped with Aileron."
        ),
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    build = commands.add_parser(
        "build",
        help="Build (or rebuild) an agent's sandbox image, showing the build's progress.",
        description=(
            "Build aileron/sandbox-AGENT:VERSION. The base image is the agent's usual one"
            " (node:22-bookworm-slim for the npm agents, debian:bookworm-slim for goose), or"
            " --base-image, or $AILERON_SANDBOX_BASE_IMAGE: any Debian-like image works. The"
            " agent's version is [sandbox.pins] in config.toml (npm's latest when unpinned)."
            " The host's HTTPS_PROXY, HTTP_PROXY and NO_PROXY are passed to the build only,"
            " never into the image or the running agent."
        ),
    )
    build.add_argument("agent", metavar="AGENT", choices=AGENT_NAMES, help=", ".join(AGENT_NAMES))
    _engine_option(build)
    build.add_argument("--base-image", metavar="IMAGE", help="build on this image")
    build.add_argument(
        "--ca-cert",
        metavar="FILE",
        action="append",
        default=[],
        type=Path,
        help="a PEM CA certificate the build must trust, e.g. your TLS-intercepting proxy's"
        " (repeatable): installed in the image's system store and trusted by the build's npm",
    )
    build.add_argument(
        "--build-network",
        metavar="NAME",
        help="the engine network the build runs on (e.g. host)",
    )
    build.add_argument(
        "--refresh",
        action="store_true",
        help="install the agent anew instead of reusing the cached install step",
    )
    build.set_defaults(handler=_build)
    check = commands.add_parser(
        "check",
        help="Run the pre-launch checks of an agent's image in a container.",
        description=(
            "Run the checks `aileron launch --sandbox` makes before the agent starts, with the"
            " current directory as the workspace: the workspace is writable, the agent's"
            " command is in the image, and curl or wget is there for Aileron's shims. A launch"
            " runs these checks once per image, workspace and container user and remembers a"
            " pass (in AILERON_HOME/sandbox/checks.json); this command forgets the passes of"
            " the image, so its next launch checks again."
        ),
    )
    check.add_argument("agent", metavar="AGENT", choices=AGENT_NAMES, help=", ".join(AGENT_NAMES))
    _engine_option(check)
    check.add_argument("--image", metavar="IMAGE", help="check this image instead of Aileron's")
    add_json_flag(check)
    check.set_defaults(handler=_check)


def _engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINE_MODES,
        default="auto",
        help="the container engine (default: auto, the first of docker, podman that works)",
    )


def _build(args: argparse.Namespace) -> int:
    from aileron_cli.launch import agent_named
    from aileron_cli.sandbox import images
    from aileron_cli.sandbox.config import load_sandbox_config
    from aileron_cli.sandbox.engine import detect
    from aileron_core.paths import Layout

    env = dict(os.environ)
    agent = agent_named(args.agent)
    settings = load_sandbox_config(Layout().config)
    engine = detect(args.engine, env)
    options = images.build_options(
        agent.name,
        env,
        pins=settings.pins,
        base=args.base_image,
        ca_certs=tuple(args.ca_cert),
        network=args.build_network,
        refresh=args.refresh,
    )
    image = images.build(engine, agent.name, agent.command, options)
    print(image.ref)
    return 0


def _check(args: argparse.Namespace) -> int:
    from aileron_cli.launch import agent_named
    from aileron_cli.sandbox.check import check_image

    agent = agent_named(args.agent)
    report = check_image(agent, dict(os.environ), engine_mode=args.engine, image=args.image)
    if args.json:
        print_json(report)
    else:
        print_fields(report.items())
    return 0
