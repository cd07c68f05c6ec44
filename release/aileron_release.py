"""Release tooling for the Aileron set: five wheels that are released together or not at all.

``release/VERSION`` is the single source of truth. Every package's version field
(``src/<import>/__about__.py``, read by hatchling) and every ``aileron-*`` pin between siblings
must equal it exactly. Commands (run through ``hatch run release:<name>``)::

    set-version X.Y.Z   write X.Y.Z into VERSION, every __about__.py and every sibling pin
    check               fail, naming each package, when anything differs from VERSION
    build [--dist DIR]  check, build 5 wheels + 5 sdists, verify the built set, write
                        SHA256SUMS and release.json
    verify [--dist DIR] verify an already built set
"""

from __future__ import annotations

import argparse
import email.message
import email.parser
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# distribution name -> (import package, the siblings it must pin exactly)
PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "aileron-core": ("aileron_core", ()),
    "aileron-cli": ("aileron_cli", ("aileron-core", "aileron-mcp", "aileron-shims")),
    "aileron-mcp": ("aileron_mcp", ("aileron-core",)),
    "aileron-shims": ("aileron_shims", ("aileron-core",)),
    "aileron-enclave": ("aileron_enclave", ("aileron-core",)),
}

VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?$")
ABOUT_RE = re.compile(r'^__version__ = "([^"]*)"$', re.MULTILINE)
# A requirement on a sibling: name, then the rest of the specifier up to the closing quote.
SIBLING_REQ_RE = re.compile(r'"(aileron-[a-z]+)\s*([^";]*)((?:;[^"]*)?)"')
# The `dependencies = [ … ]` array of a pyproject.toml, where sibling pins are rewritten.
DEPENDENCIES_RE = re.compile(r"^dependencies = \[\n(.*?)^\]", re.MULTILINE | re.DOTALL)


class ReleaseError(Exception):
    """The set is not a matched release; the message names every offending package."""


@dataclass(frozen=True)
class PackageState:
    """What one package declares about its own version and its sibling pins."""

    dist: str
    directory: Path
    version: str
    sibling_pins: dict[str, str]  # sibling name -> full specifier, e.g. "==0.1.0"


def _about_path(root: Path, dist: str) -> Path:
    return root / "packages" / dist / "src" / PACKAGES[dist][0] / "__about__.py"


def _read_version_file(root: Path) -> str:
    version = (root / "release" / "VERSION").read_text().strip()
    if not VERSION_RE.match(version):
        raise ReleaseError(f"release/VERSION holds {version!r}, which is not a release version")
    return version


def sibling_pins(requirements: Iterable[str]) -> dict[str, str]:
    """Map each ``aileron-*`` requirement to its specifier, e.g. ``{"aileron-core": "==0.1.0"}``."""
    pins: dict[str, str] = {}
    for requirement in requirements:
        found = SIBLING_REQ_RE.fullmatch(f'"{requirement}"')
        if found:
            pins[found.group(1)] = found.group(2).replace(" ", "")
    return pins


def read_package(root: Path, dist: str) -> PackageState:
    """Read the version and sibling pins that ``dist`` declares in its own files."""
    directory = root / "packages" / dist
    pyproject = tomllib.loads((directory / "pyproject.toml").read_text())
    project = pyproject.get("project", {})
    if project.get("name") != dist:
        raise ReleaseError(f"{dist}: pyproject.toml names the project {project.get('name')!r}")
    match = ABOUT_RE.search(_about_path(root, dist).read_text())
    if match is None:
        raise ReleaseError(f"{dist}: no __version__ line in {_about_path(root, dist)}")
    pins = sibling_pins(project.get("dependencies", []))
    return PackageState(dist, directory, match.group(1), pins)


def problems(root: Path = ROOT) -> list[str]:
    """Every way in which the packages on disk differ from ``release/VERSION``."""
    version = _read_version_file(root)
    found: list[str] = []
    for dist, (_, siblings) in PACKAGES.items():
        state = read_package(root, dist)
        if state.version != version:
            found.append(f"{dist}: version is {state.version}, the set is {version}")
        for sibling in siblings:
            pin = state.sibling_pins.get(sibling)
            if pin is None:
                found.append(f"{dist}: does not depend on {sibling}")
            elif pin != f"=={version}":
                found.append(f"{dist}: pins {sibling}{pin}, the set needs {sibling}=={version}")
        for extra in sorted(set(state.sibling_pins) - set(siblings)):
            found.append(f"{dist}: depends on {extra}, which is not one of its allowed siblings")
    return found


def check(root: Path = ROOT) -> str:
    """Return the set version, or raise ``ReleaseError`` listing every mismatch."""
    found = problems(root)
    if found:
        raise ReleaseError("the release set is not matched:\n  " + "\n  ".join(found))
    return _read_version_file(root)


def _repin(block: re.Match[str], version: str) -> str:
    return SIBLING_REQ_RE.sub(lambda m: f'"{m.group(1)}=={version}{m.group(3)}"', block.group(0))


def set_version(version: str, root: Path = ROOT) -> None:
    """Write ``version`` into VERSION, every package's version field and every sibling pin."""
    if not VERSION_RE.match(version):
        raise ReleaseError(
            f"{version!r} is not a release version (expected e.g. 1.2.3 or 1.2.3rc1)"
        )
    for dist in PACKAGES:
        about = _about_path(root, dist)
        about.write_text(ABOUT_RE.sub(f'__version__ = "{version}"', about.read_text()))
        pyproject = root / "packages" / dist / "pyproject.toml"
        pyproject.write_text(
            DEPENDENCIES_RE.sub(lambda block: _repin(block, version), pyproject.read_text())
        )
    (root / "release" / "VERSION").write_text(f"{version}\n")
    check(root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _wheel_metadata(path: Path) -> email.message.Message:
    with zipfile.ZipFile(path) as wheel:
        names = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise ReleaseError(f"{path.name}: expected one METADATA file, found {len(names)}")
        return email.parser.Parser().parsestr(wheel.read(names[0]).decode())


def _sdist_metadata(path: Path) -> email.message.Message:
    with tarfile.open(path) as sdist:
        members = [
            m for m in sdist.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
        ]
        if len(members) != 1:
            raise ReleaseError(
                f"{path.name}: expected one top-level PKG-INFO, found {len(members)}"
            )
        handle = sdist.extractfile(members[0])
        if handle is None:
            raise ReleaseError(f"{path.name}: PKG-INFO is not a regular file")
        return email.parser.Parser().parsestr(handle.read().decode())


def _artifact(dist_dir: Path, pattern: str, dist: str) -> Path:
    matches = sorted(dist_dir.glob(pattern))
    if len(matches) != 1:
        names = ", ".join(m.name for m in matches) or "none"
        raise ReleaseError(f"{dist}: expected exactly one {pattern} in {dist_dir}, found {names}")
    return matches[0]


def verify(dist_dir: Path, version: str) -> dict[str, object]:
    """Verify that ``dist_dir`` holds the matched set at ``version``; return the manifest."""
    errors: list[str] = []
    entries: list[dict[str, object]] = []
    for dist, (module, siblings) in PACKAGES.items():
        try:
            wheel = _artifact(dist_dir, f"{module}-*-py3-none-any.whl", dist)
            sdist = _artifact(dist_dir, f"{module}-*.tar.gz", dist)
        except ReleaseError as error:
            errors.append(str(error))
            continue
        requires: list[str] = []
        for artifact, metadata in (
            (wheel, _wheel_metadata(wheel)),
            (sdist, _sdist_metadata(sdist)),
        ):
            if metadata["Name"] != dist:
                errors.append(f"{dist}: {artifact.name} is named {metadata['Name']!r}")
            if metadata["Version"] != version:
                errors.append(
                    f"{dist}: {artifact.name} has version {metadata['Version']},"
                    f" the set is {version}"
                )
            requires = metadata.get_all("Requires-Dist") or []
            pinned = sibling_pins(requires)
            for sibling in siblings:
                pin = pinned.get(sibling, " (missing)")
                if pin != f"=={version}":
                    errors.append(
                        f"{dist}: {artifact.name} requires {sibling}{pin},"
                        f" the set needs {sibling}=={version}"
                    )
            for extra in sorted(set(pinned) - set(siblings)):
                errors.append(f"{dist}: {artifact.name} requires {extra}, not an allowed sibling")
        entries.append(
            {
                "name": dist,
                "version": version,
                "requires": sorted(r for r in requires if r.startswith("aileron-")),
                "wheel": {"file": wheel.name, "sha256": _sha256(wheel)},
                "sdist": {"file": sdist.name, "sha256": _sha256(sdist)},
            }
        )
    if errors:
        raise ReleaseError(f"{dist_dir} is not a matched release set:\n  " + "\n  ".join(errors))
    return {"name": "aileron", "version": version, "packages": entries}


def write_manifests(dist_dir: Path, manifest: dict[str, object]) -> None:
    """Write ``SHA256SUMS`` (sha256sum format) and ``release.json`` beside the artifacts."""
    artifacts = sorted(p for p in dist_dir.iterdir() if p.suffix in {".whl", ".gz"})
    sums = "".join(f"{_sha256(p)}  {p.name}\n" for p in artifacts)
    (dist_dir / "SHA256SUMS").write_text(sums)
    (dist_dir / "release.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def build(dist_dir: Path, root: Path = ROOT) -> dict[str, object]:
    """Check the sources, build every wheel and sdist into ``dist_dir`` and verify the set."""
    version = check(root)
    if dist_dir.exists():
        shutil.rmtree(dist_dir)
    dist_dir.mkdir(parents=True)
    for dist in PACKAGES:
        print(f"building {dist} {version}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-d", str(dist_dir.resolve())],
            cwd=root / "packages" / dist,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    manifest = verify(dist_dir, version)
    write_manifests(dist_dir, manifest)
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="release", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    setter = commands.add_parser("set-version", help="write one version into the whole set")
    setter.add_argument("version")
    commands.add_parser("check", help="fail when any version or sibling pin differs")
    for name in ("build", "verify"):
        sub = commands.add_parser(name, help=f"{name} the set in a dist directory")
        sub.add_argument("--dist", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    try:
        if args.command == "set-version":
            set_version(args.version)
            print(f"the set is now at {args.version}")
        elif args.command == "check":
            print(f"the release set is matched at {check()}")
        elif args.command == "build":
            manifest = build(args.dist)
            print(f"built and verified the set {manifest['version']} in {args.dist}")
        else:
            manifest = verify(args.dist, check())
            print(f"{args.dist} holds the matched set {manifest['version']}")
    except ReleaseError as error:
        print(f"release: error: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"release: error: building failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
