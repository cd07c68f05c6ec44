"""The release tooling keeps the five packages a matched set and refuses anything else."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import aileron_release
import pytest
from helpers import REPO


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the sources the release tooling reads (packages/ and release/)."""
    root = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "dist")
    shutil.copytree(REPO / "packages", root / "packages", ignore=ignore)
    shutil.copytree(REPO / "release", root / "release", ignore=ignore)
    return root


def bump_about(root: Path, dist: str, version: str) -> None:
    module = aileron_release.PACKAGES[dist][0]
    about = root / "packages" / dist / "src" / module / "__about__.py"
    text = about.read_text()
    about.write_text(aileron_release.ABOUT_RE.sub(f'__version__ = "{version}"', text))


def test_repository_is_a_matched_set(set_version: str) -> None:
    """The checked-in packages all carry release/VERSION and pin their siblings to it."""
    assert aileron_release.check(REPO) == set_version


def test_hand_edited_version_is_named(repo_copy: Path) -> None:
    """Changing one package's version by hand makes `check` fail naming that package."""
    bump_about(repo_copy, "aileron-shims", "9.9.9")
    with pytest.raises(aileron_release.ReleaseError, match=r"aileron-shims: version is 9\.9\.9"):
        aileron_release.check(repo_copy)


def test_loose_sibling_pin_is_named(repo_copy: Path, set_version: str) -> None:
    """A sibling pin that is not `==` the set version is named with the package that has it."""
    pyproject = repo_copy / "packages" / "aileron-mcp" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(f"aileron-core=={set_version}", "aileron-core>=0.1")
    )
    problems = aileron_release.problems(repo_copy)
    assert problems == [
        f"aileron-mcp: pins aileron-core>=0.1, the set needs aileron-core=={set_version}"
    ]


def test_check_command_exits_nonzero_naming_the_package(repo_copy: Path) -> None:
    """The `check` command prints the offending package on stderr and exits 1."""
    bump_about(repo_copy, "aileron-enclave", "0.0.1")
    done = subprocess.run(
        [sys.executable, str(repo_copy / "release" / "aileron_release.py"), "check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "aileron-enclave: version is 0.0.1" in done.stderr


def test_set_version_rewrites_every_field_and_pin(repo_copy: Path) -> None:
    """`set-version` writes one version into VERSION, every package and every sibling pin."""
    aileron_release.set_version("2.3.4rc1", repo_copy)
    assert (repo_copy / "release" / "VERSION").read_text() == "2.3.4rc1\n"
    for dist in aileron_release.PACKAGES:
        state = aileron_release.read_package(repo_copy, dist)
        assert state.version == "2.3.4rc1"
        assert set(state.sibling_pins.values()) <= {"==2.3.4rc1"}
    assert aileron_release.check(repo_copy) == "2.3.4rc1"


def test_set_version_refuses_a_malformed_version(repo_copy: Path) -> None:
    """`set-version` refuses something that is not a version and changes nothing."""
    before = (repo_copy / "release" / "VERSION").read_text()
    with pytest.raises(aileron_release.ReleaseError, match="not a release version"):
        aileron_release.set_version("1.2", repo_copy)
    assert (repo_copy / "release" / "VERSION").read_text() == before


@pytest.mark.slow
def test_build_produces_a_verified_set(repo_copy: Path, set_version: str) -> None:
    """`build` leaves 5 wheels, 5 sdists, SHA256SUMS and a release.json that match each other."""
    dist = repo_copy / "dist"
    aileron_release.build(dist, repo_copy)
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    sdists = sorted(p.name for p in dist.glob("*.tar.gz"))
    assert len(wheels) == 5 and len(sdists) == 5
    sums = dict(line.split("  ")[::-1] for line in (dist / "SHA256SUMS").read_text().splitlines())
    assert sorted(sums) == sorted(wheels + sdists)
    for name, digest in sums.items():
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest
    manifest = json.loads((dist / "release.json").read_text())
    assert manifest["version"] == set_version
    assert sorted(p["name"] for p in manifest["packages"]) == sorted(aileron_release.PACKAGES)
    cli = next(p for p in manifest["packages"] if p["name"] == "aileron-cli")
    assert cli["requires"] == [f"aileron-{n}=={set_version}" for n in ("core", "mcp", "shims")]


@pytest.mark.slow
def test_build_refuses_an_unmatched_set(repo_copy: Path) -> None:
    """`build` on sources with one hand-edited version fails before building anything."""
    bump_about(repo_copy, "aileron-cli", "0.0.9")
    with pytest.raises(aileron_release.ReleaseError, match="aileron-cli: version is 0.0.9"):
        aileron_release.build(repo_copy / "dist", repo_copy)
    assert not (repo_copy / "dist").exists()


@pytest.mark.slow
def test_verify_names_a_wheel_built_at_another_version(repo_copy: Path, set_version: str) -> None:
    """A wheel whose metadata carries another version makes `verify` fail naming its package."""
    dist = repo_copy / "dist"
    aileron_release.build(dist, repo_copy)
    wheel = next(dist.glob("aileron_mcp-*.whl"))
    rewritten = dist / "rewritten.zip"
    with zipfile.ZipFile(wheel) as old, zipfile.ZipFile(rewritten, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename.endswith("METADATA"):
                data = data.replace(f"Version: {set_version}".encode(), b"Version: 7.7.7")
            new.writestr(item, data)
    rewritten.replace(wheel)
    with pytest.raises(aileron_release.ReleaseError, match="aileron-mcp: .* has version 7.7.7"):
        aileron_release.verify(dist, set_version)
