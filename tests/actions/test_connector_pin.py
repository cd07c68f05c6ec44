"""`connector install --sha256` pins the digest Aileron prints, through the real CLI and daemon."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from actions.support import echo_spec
from helpers import aileron

from aileron_core.discovery import DaemonInfo

HOST = "127.0.0.1:9"


def _write(path: Path, spec: object, **dumps: object) -> Path:
    path.write_text(json.dumps(spec, **dumps))  # type: ignore[arg-type]
    return path


def _installed_digest(stdout: str) -> str:
    found = re.search(r"\(sha256 ([0-9a-f]{64})\)", stdout)
    assert found is not None, stdout
    return found.group(1)


def test_the_printed_digest_pins_the_spec_whatever_its_layout(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """install, list and show print one digest; --sha256 with it installs the same spec laid
    out differently (indent, key order), so the pin covers the spec, not white space."""
    spec = echo_spec(HOST)
    first = aileron("connector", "install", str(_write(tmp_path / "a.json", spec)))
    assert first.returncode == 0, first.stderr
    digest = _installed_digest(first.stdout)
    listed = aileron("connector", "list")
    shown = aileron("connector", "show", spec["connector"]["fqn"])
    assert digest in listed.stdout.split()
    assert f"sha256: {digest}" in shown.stdout.splitlines()
    other = _write(tmp_path / "b.json", dict(reversed(spec.items())), indent=4)
    assert hashlib.sha256(other.read_bytes()).hexdigest() != digest
    pinned = aileron("connector", "install", str(other), "--sha256", digest.upper())
    assert pinned.returncode == 0, pinned.stderr
    assert _installed_digest(pinned.stdout) == digest


def test_the_file_digest_still_pins(real_daemon: DaemonInfo, tmp_path: Path) -> None:
    """The sha256 of the file's bytes (what `sha256sum FILE` prints) is accepted as a pin too."""
    path = _write(tmp_path / "echo.json", echo_spec(HOST), indent=2)
    file_digest = hashlib.sha256(path.read_bytes()).hexdigest()
    done = aileron("connector", "install", str(path), "--sha256", file_digest)
    assert done.returncode == 0, done.stderr
    assert _installed_digest(done.stdout) != file_digest


def test_a_wrong_digest_fails_naming_both_and_installs_nothing(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """A pin that is neither digest fails (exit 1) naming the spec's digest, the file's and the
    pin, and the connector is not installed."""
    path = _write(tmp_path / "echo.json", echo_spec(HOST))
    wrong = "ab" * 32
    done = aileron("connector", "install", str(path), "--sha256", wrong)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("aileron: error: ")
    assert json.loads(aileron("connector", "list", "--json").stdout) == []
    file_digest = hashlib.sha256(path.read_bytes()).hexdigest()
    spec_digest = _installed_digest(aileron("connector", "install", str(path)).stdout)
    assert spec_digest in done.stderr
    assert file_digest in done.stderr
    assert wrong in done.stderr


def test_a_shortened_digest_is_refused_before_anything_is_sent(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """The 12-digit prefix or any non-hex text does not pin: a one-line error asks for all 64."""
    path = _write(tmp_path / "echo.json", echo_spec(HOST))
    for pin in ("ab" * 6, "zz" * 32):
        done = aileron("connector", "install", str(path), "--sha256", pin)
        assert done.returncode == 1, done.stdout
        assert "64 hex digits" in done.stderr
    assert json.loads(aileron("connector", "list", "--json").stdout) == []
