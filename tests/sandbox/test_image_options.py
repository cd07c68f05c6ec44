"""How sandbox images are built, without an engine: pins, build options, the build context
with ``--ca-cert`` files, and the failed step named from a build's output."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aileron_cli.launch.errors import ImageBuildFailed
from aileron_cli.sandbox import images
from aileron_cli.sandbox.build_failure import BASE_STEP, INSTALL_STEP, PACKAGES_STEP, diagnose
from aileron_cli.sandbox.config import load_sandbox_config, parse_sandbox_config
from aileron_core.errors import ConfigError

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----"

# What podman 4.3 prints when the install step fails behind a TLS-intercepting proxy.
PODMAN_FAILURE = """\
STEP 1/9: FROM localhost/aileron-test-node-base:bookworm
STEP 2/9: ARG AGENT_INSTALL=true
STEP 5/9: RUN : "aileron step: system packages"; set -eu;     extra_ca=;
--> Using cache 3f2c
STEP 7/9: RUN : "aileron step: agent install"; set -eu;     : "refresh: ${AGENT_REFRESH}";
npm ERR! code SELF_SIGNED_CERT_IN_CHAIN
npm ERR! errno SELF_SIGNED_CERT_IN_CHAIN
npm ERR! request to https://registry.npmjs.org/@openai%2fcodex failed
Error: building at STEP "RUN : "aileron step: agent install"; set -eu; ...": while running \
runtime: exit status 1
"""

# What docker buildx's plain progress prints for the same failure (steps interleave).
DOCKER_FAILURE = """\
#5 [2/5] COPY ca/ /usr/local/share/ca-certificates/aileron/
#6 [3/5] RUN : "aileron step: system packages"; set -eu;
#6 CACHED
#7 [4/5] RUN : "aileron step: agent install"; set -eu;
#7 3.201 npm error code ETARGET
#7 3.202 npm error notarget No matching version found for @openai/codex@9.9.9.
#7 ERROR: process "/bin/sh -c : \\"aileron step: agent install\\"; set -eu;" did not \
complete successfully: exit code: 1
ERROR: failed to solve: process "/bin/sh -c : \\"aileron step: agent install\\"; set -eu;" \
did not complete successfully: exit code: 1
"""


def test_pins_parse_and_reach_the_install_command(tmp_path: Path) -> None:
    """`[sandbox.pins] codex = "0.171.0"` is read, and codex's install becomes npm's
    `@openai/codex@0.171.0`; an unpinned agent keeps its usual install."""
    config = tmp_path / "config.toml"
    config.write_text('[sandbox.pins]\ncodex = "0.171.0"\n', encoding="utf-8")
    settings = load_sandbox_config(config)
    assert settings.pins == {"codex": "0.171.0"}
    options = images.build_options("codex", {}, pins=settings.pins)
    install = images.RECIPES["codex"].install_command(options.pin)
    assert install == "npm install -g @openai/codex@0.171.0 && npm cache clean --force"
    assert images.RECIPES["claude"].install_command(None) == images.RECIPES["claude"].install


@pytest.mark.parametrize(
    ("pins", "words"),
    [
        ({"codex": "0.1; rm -rf /"}, "must be an npm version"),
        ({"codex": "^1.2"}, "must be an npm version"),
        ({"codex": 171}, "must be an npm version"),
        ({"goose": "1.0"}, "'goose' cannot be pinned"),
        ({"vim": "9"}, "'vim' cannot be pinned"),
        ("0.171.0", "must be a table"),
    ],
)
def test_bad_pins_are_config_errors(pins: object, words: str) -> None:
    """A pin that is not an npm-safe version, or for an agent not installed from npm, is a
    ConfigError naming it."""
    with pytest.raises(ConfigError, match="sandbox.pins") as caught:
        parse_sandbox_config({"sandbox": {"pins": pins}}, "config.toml")
    assert words in caught.value.message


@given(st.text(min_size=1, max_size=40))
def test_accepted_pins_are_shell_safe(version: str) -> None:
    """Any pin the parser accepts has only letters, digits and `.+_-` (safe in `sh -c`)."""
    try:
        settings = parse_sandbox_config({"sandbox": {"pins": {"codex": version}}}, "c")
    except ConfigError:
        return
    assert all(c.isascii() and (c.isalnum() or c in ".+_-") for c in settings.pins["codex"])


def test_build_options_take_the_host_proxy_and_test_repository() -> None:
    """The host's proxy variables become build arguments; other variables do not; the tag's
    repository follows $AILERON_SANDBOX_REPOSITORY."""
    env = {
        "HTTPS_PROXY": "http://proxy.corp:3128",
        "no_proxy": "localhost",
        "HTTP_PROXY": "",
        "OPENAI_API_KEY": "sk-nope",
        images.REPOSITORY_VAR: "localhost/aileron-test",
    }
    options = images.build_options("codex", env, pins={}, network="host", refresh=True)
    assert dict(options.proxy) == {"HTTPS_PROXY": "http://proxy.corp:3128", "no_proxy": "localhost"}
    assert options.tag.startswith("localhost/aileron-test/sandbox-codex:")
    assert options.network == "host" and options.refresh and options.pin is None
    assert images.default_tag("codex", {}).startswith("aileron/sandbox-codex:")


def test_build_context_holds_the_containerfile_and_each_ca_cert(tmp_path: Path) -> None:
    """The context has the shipped Containerfile and every --ca-cert as a `.crt` file that
    update-ca-certificates reads, ending in a newline."""
    first, second = tmp_path / "corp.pem", tmp_path / "egress.crt"
    first.write_text(PEM)
    second.write_text(PEM + "\n")
    context = tmp_path / "context"
    context.mkdir()
    images._build_context(context, (first, second))
    shipped = Path(str(resources.files("aileron_cli.sandbox").joinpath("Containerfile")))
    assert (context / "Containerfile").read_bytes() == shipped.read_bytes()
    crts = sorted((context / "ca").glob("*.crt"))
    assert [p.name for p in crts] == ["aileron-00-corp.crt", "aileron-01-egress.crt"]
    assert all(p.read_text() == PEM + "\n" for p in crts)


def test_a_ca_cert_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    """A --ca-cert file without a PEM certificate (or missing) stops the build, saying so."""
    der = tmp_path / "corp.der"
    der.write_bytes(b"0\x82\x01\x0a")
    for cert in (der, tmp_path / "missing.pem"):
        context = tmp_path / f"context-{cert.name}"
        context.mkdir()
        with pytest.raises(ImageBuildFailed) as caught:
            images._build_context(context, (cert,))
        assert str(cert) in caught.value.message


def test_podman_output_names_the_install_step_and_npm_code() -> None:
    """podman's output: the install step failed with SELF_SIGNED_CERT_IN_CHAIN, and the hint
    says to pass --ca-cert."""
    failure = diagnose(PODMAN_FAILURE.splitlines())
    assert failure.step == INSTALL_STEP and failure.npm_code == "SELF_SIGNED_CERT_IN_CHAIN"
    assert failure.summary == ("the agent install step failed (npm: SELF_SIGNED_CERT_IN_CHAIN)")
    assert "--ca-cert" in failure.hint(base="b", base_var="V")


def test_docker_output_names_the_install_step_and_points_at_the_pin() -> None:
    """docker's plain progress: the step its ERROR line names, and a missing version points at
    [sandbox.pins]."""
    failure = diagnose(DOCKER_FAILURE.splitlines())
    assert failure.step == INSTALL_STEP and failure.npm_code == "ETARGET"
    assert "[sandbox.pins]" in failure.hint(base="b", base_var="V")


def test_other_steps_get_their_own_hint() -> None:
    """A failing FROM blames the base image; a failing packages step names apt-get; output
    with no step keeps the base-image hint."""
    base = diagnose(["STEP 1/9: FROM node:22-bookworm-slim", "Error: pinging registry"])
    assert base.step == BASE_STEP and "--base-image" in base.hint(base="node", base_var="V")
    packages = diagnose(
        [
            'STEP 5/9: RUN : "aileron step: system packages"; set -eu;',
            "E: Unable to locate package curl",
        ]
    )
    assert packages.step == PACKAGES_STEP and "apt-get" in packages.hint(base="b", base_var="V")
    assert packages.summary == "the system packages step failed"
    unknown = diagnose(["ERROR: failed to solve"])
    assert unknown.step is None and unknown.summary == ""
    assert "--base-image" in unknown.hint(base="b", base_var="V")
