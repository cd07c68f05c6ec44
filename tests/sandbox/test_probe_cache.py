"""The remembered engine probe (sandbox/probe_cache.py): a podman is asked `podman version`
once per binary; a changed binary, a remote service, docker or `auto` with docker on PATH are
probed as before; a remembered engine that broke reports what the probe reports."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from aileron_cli.launch.errors import ImageUnavailable, SandboxUnavailable
from aileron_cli.sandbox import images, probe_cache
from aileron_cli.sandbox.engine import Engine, detect

REF = "localhost/aileron-test/sandbox-codex:probe"

# A stand-in podman CLI: logs its first word, answers `version` for itself (no server, as a
# local podman does) and `image inspect` for REF; with the file ./broken next to it, every
# command fails as a podman whose storage or service is gone does.
FAKE_PODMAN = """#!/bin/sh
here=$(dirname "$0")
echo "$1" >> "$here/calls.log"
if [ -e "$here/broken" ]; then
  echo "Error: cannot connect to the storage: broken" >&2
  exit 125
fi
case "$1" in
  version) echo '{"Client":{"Version":"%(version)s"}}' ;;
  image)
    if [ "$3" = "%(ref)s" ]; then
      echo '[{"Id":"sha256:abc","Config":{"Env":["PATH=/usr/bin"]}}]'
    else
      echo "Error: %(ref)s: image not known" >&2; exit 125
    fi ;;
  *) exit 0 ;;
esac
"""


def _install(bindir: Path, version: str = "4.3.1") -> Path:
    bindir.mkdir(exist_ok=True)
    path = bindir / "podman"
    path.write_text(FAKE_PODMAN % {"version": version, "ref": REF})
    path.chmod(0o755)
    return path


def _calls(bindir: Path) -> list[str]:
    log = bindir / "calls.log"
    return log.read_text().split() if log.exists() else []


def _image(engine: Engine, env: Mapping[str, str], ref: str = REF) -> images.Image:
    options = images.build_options("codex", env, pins={})
    return images.prepare(engine, "codex", "codex", image=ref, policy="never", options=options)


def _launch_prepare(
    mode: str, env: Mapping[str, str], home: Path, ref: str = REF
) -> tuple[Engine, images.Image]:
    return probe_cache.prepare_with_engine(mode, env, home, lambda e: _image(e, env, ref))


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    """A PATH folder holding the stand-in podman only."""
    folder = tmp_path / "bin"
    _install(folder)
    return folder


@pytest.fixture
def env(bindir: Path) -> dict[str, str]:
    """An environment whose PATH finds the stand-in podman and nothing else."""
    return {"PATH": str(bindir)}


def test_a_second_launch_asks_podman_for_its_version_no_more(
    bindir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """The first launch probes and remembers; the next runs only the image step, with the
    same engine (path and version)."""
    home = tmp_path / "home"
    first, image = _launch_prepare("podman", env, home)
    assert _calls(bindir) == ["version", "image"]
    assert first == Engine("podman", str(bindir / "podman"), "4.3.1", daemonless=True)
    assert image.id == "sha256:abc"
    second, _ = _launch_prepare("podman", env, home)
    assert second == first
    assert _calls(bindir) == ["version", "image", "image"]
    mode = os.stat(probe_cache.cache_path(home)).st_mode & 0o777
    assert mode == 0o600


def test_a_changed_podman_binary_is_probed_again(
    bindir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """An upgraded (rewritten) podman is a miss: probed again, its new version used."""
    home = tmp_path / "home"
    _launch_prepare("podman", env, home)
    _install(bindir, version="5.0.0")
    engine, _ = _launch_prepare("podman", env, home)
    assert engine.version == "5.0.0"
    assert _calls(bindir) == ["version", "image", "version", "image"]


def test_a_remembered_podman_that_broke_reports_what_the_probe_reports(
    bindir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """The image step fails on the remembered engine: it is probed again and the launch fails
    with the probe's own message, as without the cache; the next launch probes first."""
    home = tmp_path / "home"
    _launch_prepare("podman", env, home)
    (bindir / "broken").touch()
    with pytest.raises(SandboxUnavailable) as uncached:
        detect("podman", env)
    with pytest.raises(SandboxUnavailable) as raised:
        _launch_prepare("podman", env, home)
    assert raised.value.message == uncached.value.message
    assert raised.value.hint == uncached.value.hint
    (bindir / "broken").unlink()
    (bindir / "calls.log").unlink()
    _launch_prepare("podman", env, home)
    assert _calls(bindir) == ["version", "image"]


def test_an_image_failure_on_a_working_remembered_engine_stands(
    bindir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """A missing image is the image step's error, after one probe confirming the engine."""
    home = tmp_path / "home"
    _launch_prepare("podman", env, home)
    with pytest.raises(ImageUnavailable, match="podman has no image"):
        _launch_prepare("podman", env, home, ref="localhost/nope:1")
    assert _calls(bindir) == ["version", "image", "image", "version"]


@pytest.mark.parametrize(
    ("mode", "extra", "docker_on_path"),
    [
        ("podman", {"CONTAINER_HOST": "ssh://builder/run/podman/podman.sock"}, False),
        ("podman", {"CONTAINER_CONNECTION": "builder"}, False),
        ("auto", {}, True),
    ],
)
def test_probes_that_are_not_remembered(
    mode: str,
    extra: dict[str, str],
    docker_on_path: bool,
    bindir: Path,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    """A podman sent to a remote service, and `auto` with docker on PATH (tried first, its
    server may come and go), are probed on every launch."""
    if docker_on_path:
        docker = bindir / "docker"
        docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
        docker.chmod(0o755)
    env.update(extra)
    home = tmp_path / "home"
    _launch_prepare(mode, env, home)
    _launch_prepare(mode, env, home)
    assert _calls(bindir) == ["version", "image", "version", "image"]
    assert not probe_cache.cache_path(home).exists()


def test_auto_without_docker_is_remembered(
    bindir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """`auto` with no docker on PATH finds podman once."""
    home = tmp_path / "home"
    _launch_prepare("auto", env, home)
    engine, _ = _launch_prepare("auto", env, home)
    assert engine.name == "podman"
    assert _calls(bindir) == ["version", "image", "image"]


def test_a_docker_engine_is_never_remembered(tmp_path: Path) -> None:
    """docker's version is its server's: remember() keeps nothing for it."""
    home = tmp_path / "home"
    docker = Engine("docker", "/usr/bin/docker", "27.3.1")
    probe_cache.remember("docker", docker, {"PATH": "/usr/bin"}, home)
    assert not probe_cache.cache_path(home).exists()


def test_a_cache_file_not_to_trust_is_ignored_with_a_warning(
    bindir: Path, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A group-readable engines.json holds nothing: the engine is probed and the file
    rewritten 0600."""
    home = tmp_path / "home"
    _launch_prepare("podman", env, home)
    path = probe_cache.cache_path(home)
    forged = json.loads(path.read_text())
    for entry in forged["engines"].values():
        entry["version"] = "9.9.9"
    path.write_text(json.dumps(forged))
    path.chmod(0o644)
    engine, _ = _launch_prepare("podman", env, home)
    assert engine.version == "4.3.1"
    assert _calls(bindir) == ["version", "image", "version", "image"]
    assert f"aileron: warning: ignoring {path} (not a 0600 file of this user)" in (
        capsys.readouterr().err
    )
    assert os.stat(path).st_mode & 0o777 == 0o600
