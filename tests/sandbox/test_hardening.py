"""Hardening on a real engine: a container run with the launch's own spec has no capabilities,
no new privileges, a non-root user, its limits and a read-only root; and a launch from
AILERON_HOME's parent is refused before any container is created."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import script
from sandbox.support import TEST_BASE

from aileron_cli.sandbox.config import SandboxConfig
from aileron_cli.sandbox.container import HOME, WORKSPACE, run_argv
from aileron_cli.sandbox.engine import detect
from aileron_cli.sandbox.launch import staged_spec
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow

PROBE = """\
echo "uid=$(id -u) gid=$(id -g)"
grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs):' /proc/self/status
echo "pids=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"
echo "memory=$(cat /sys/fs/cgroup/memory.max 2>/dev/null \\
  || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
for place in / /usr/local/bin /etc /tmp "$HOME" "$AILERON_WORKSPACE"; do
  if (: > "$place/.probe") 2>/dev/null; then echo "writable $place"; else echo "readonly $place"; fi
done
echo "home=$(stat -c '%u:%g %a' "$HOME")"
"""
OWNER = (1500, 1600)  # the workspace's owner when the tests run as root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A project folder owned by a non-root user when the tests run as root."""
    path = tmp_path / "project"
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, *OWNER)
    return path


def _probe(workspace: Path, tmp_path: Path) -> dict[str, str]:
    engine = detect("podman", dict(os.environ))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spec = staged_spec(
        scratch,
        engine,
        tools_txt="",
        shims={},
        env={"HOME": HOME, "AILERON_WORKSPACE": WORKSPACE},
        image=TEST_BASE,
        command=("sh", "-c", PROBE),
        cwd=str(workspace),
        network="none",
        name=f"aileron-test-hardening-{os.getpid()}",
        settings=SandboxConfig(pids_limit=99, memory="300m"),
    )
    done = subprocess.run(
        run_argv(engine.call, spec),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if line.startswith(("writable ", "readonly ")):
            state, _, place = line.partition(" ")
            seen[place] = state
        else:
            key, _, value = line.replace(":\t", "=").partition("=")
            seen[key] = value.strip()
    return seen


def test_the_agent_container_is_hardened(podman: None, workspace: Path, tmp_path: Path) -> None:
    """In a container run with the launch's spec: uid not 0, no capabilities (effective,
    permitted, bounding), no_new_privs 1, the configured pids and memory limits, a read-only
    root, and /tmp, $HOME (0700, the user's) and the workspace writable."""
    seen = _probe(workspace, tmp_path)
    uid, gid = seen["uid"].split(" gid=")
    assert uid != "0" and gid != "0"
    if os.geteuid() == 0:
        assert (int(uid), int(gid)) == OWNER  # root's launch runs as the workspace's owner
    else:
        assert int(uid) == os.getuid()
    assert seen["CapEff"] == seen["CapPrm"] == seen["CapBnd"] == "0000000000000000"
    assert seen["NoNewPrivs"] == "1"
    assert seen["pids"] == "99"
    assert seen["memory"] == str(300 * 1024 * 1024)
    for place in ("/", "/usr/local/bin", "/etc"):
        assert seen[place] == "readonly", place
    for place in ("/tmp", HOME, WORKSPACE):
        assert seen[place] == "writable", place
    assert seen["home"] == f"{uid}:{gid} 700"
    assert (workspace / ".probe").stat().st_uid == int(uid)


@pytest.fixture
def refusal_image(podman: None) -> Iterator[str]:
    """A tag of the test base used by nothing else, so its container events are ours."""
    tag = f"localhost/aileron-test-refusal:{os.getpid()}"
    subprocess.run(["podman", "tag", TEST_BASE, tag], check=True, capture_output=True)
    yield tag
    subprocess.run(["podman", "rmi", tag], check=False, capture_output=True)


def test_launch_from_the_homes_parent_creates_no_container(
    layout: Layout, refusal_image: str
) -> None:
    """`cd "$AILERON_HOME/.." && aileron launch --sandbox=podman codex` is refused with one
    line saying why, and no container (and no daemon) is ever created."""
    layout.ensure()
    layout.vault.write_text("{}")
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1)) + "Z"
    before = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", f"ancestor={refusal_image}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    done = subprocess.run(
        [
            script("aileron"),
            "launch",
            "--sandbox=podman",
            "--sandbox-build=never",
            "--image",
            refusal_image,
            "codex",
        ],
        cwd=layout.home.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    first = done.stderr.splitlines()[0]
    assert "refusing to mount" in first and "contains AILERON_HOME" in first, done.stderr
    created = subprocess.run(
        [
            "podman",
            "events",
            "--stream=false",
            "--since",
            since,
            "--filter",
            "event=create",
            "--format",
            "{{.Image}}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert refusal_image not in created.split()
    after = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", f"ancestor={refusal_image}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert before == after == ""
    assert not layout.daemon_json.exists()
