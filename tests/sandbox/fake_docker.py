"""A recording stand-in for the ``docker`` CLI (imported as ``sandbox.fake_docker``).

This machine has a docker CLI but no docker engine, so the docker path of ``aileron launch
--sandbox`` is exercised with :func:`install`: a small Python script named ``docker`` that
appends every invocation to a JSON-lines log (its argv and, when it was given ``--env-file``,
that file's text and mode as they were while the container "ran") and answers the way docker
does for what python-on-whales and Aileron ask of it:

- ``version -f '{{json .}}'``: client and server versions as JSON;
- ``image inspect REF``: ``[{"Id", "RepoTags", "Config": {"Env": [PATH=…]}}]``, or ``Error: No
  such image`` (exit 1) for a ref listed in ``FAKE_DOCKER_MISSING`` until a build tagged it;
- ``network inspect bridge``: the bridge with ``IPAM.Config[0].Gateway`` = ``127.0.0.1``;
- ``buildx build …`` / ``build …``: a few progress lines, exit 0, and its ``--tag`` then exists;
- ``run …`` / ``container run …``: with the check script (``aileron-check``) ``aileron-check:
  ok`` (exit 0) or a failure line for ``FAKE_DOCKER_CHECK_FAIL`` (exit 3); otherwise it is the
  agent: optionally probe the session's listener and egress proxy through the Unix sockets of
  the folder mounted at ``/run/aileron`` (what the in-container bridge forwards to), then exit
  ``FAKE_DOCKER_EXIT``.

Knobs, all environment variables read by the stand-in: ``FAKE_DOCKER_LOG`` (required),
``FAKE_DOCKER_MISSING`` (comma-separated refs), ``FAKE_DOCKER_CHECK_FAIL`` (a check name),
``FAKE_DOCKER_EXIT`` (the agent's exit code), ``FAKE_DOCKER_BROKEN=1`` (every command fails as a
CLI with no daemon does), ``FAKE_DOCKER_NO_BUILDX=1`` (``buildx version`` fails as it does without
the plugin), ``FAKE_DOCKER_BUILD_FAIL=1`` and ``FAKE_DOCKER_DAEMON_JSON`` (the
daemon's ``daemon.json``: the agent run then calls the listener's ``api.sock`` with the
session token and with the master token, asks ``egress.sock`` for a tunnel to
``EGRESS_PROBE_HOST:443``, and logs the three HTTP statuses, never a token).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCKER_VERSION = "27.3.1"
GATEWAY = "127.0.0.1"
IMAGE_PATH = "/usr/local/fake/bin:/usr/local/bin:/usr/bin:/bin"
"""The PATH every image of the stand-in declares (``Config.Env``)."""
RUN_DIR = "/run/aileron"
"""Where the session's sockets are mounted (``aileron_cli.sandbox.bridge.RUN_DIR``)."""
EGRESS_PROBE_HOST = "blocked.example"
"""The host the agent run asks the egress proxy for: not allowed, so ``403``."""
DAEMON_DOWN = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    " Is the docker daemon running?"
)

_SCRIPT = r"""
import hashlib, http.client, json, os, socket, sys, urllib.parse

LOG = os.environ["FAKE_DOCKER_LOG"]
BUILT = LOG + ".built"
ARGV = sys.argv[1:]
GATEWAY = __GATEWAY__
IMAGE_PATH = __IMAGE_PATH__
DAEMON_DOWN = __DAEMON_DOWN__
VERSION = __VERSION__
RUN_DIR = __RUN_DIR__
EGRESS_PROBE_HOST = __EGRESS_PROBE_HOST__


def option(name):
    for i, arg in enumerate(ARGV[:-1]):
        if arg == name:
            return ARGV[i + 1]
    return None


def log(**extra):
    env_file = option("--env-file")
    text = None
    if env_file is not None and os.path.exists(env_file):
        with open(env_file, encoding="utf-8") as f:
            text = f.read()
        extra["env_file_mode"] = os.stat(env_file).st_mode & 0o777
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps({"argv": sys.argv, "env_file": text, **extra}) + "\n")


def built():
    try:
        with open(BUILT, encoding="utf-8") as f:
            return set(f.read().split())
    except FileNotFoundError:
        return set()


def fail(message, code=1):
    print(message, file=sys.stderr)
    sys.exit(code)


def version():
    info = {
        "Client": {"Version": VERSION, "ApiVersion": "1.47", "Os": "linux", "Arch": "amd64"},
        "Server": {
            "Version": VERSION,
            "ApiVersion": "1.47",
            "MinAPIVersion": "1.24",
            "Os": "linux",
            "Arch": "amd64",
            "KernelVersion": "6.1.0-fake",
            "Components": [{"Name": "Engine", "Version": VERSION}],
        },
    }
    if "-f" in ARGV or "--format" in ARGV:
        print(json.dumps(info))
    else:
        print(f"Client:\n Version: {VERSION}\nServer:\n Version: {VERSION}")


def image_inspect(refs):
    missing = {r for r in os.environ.get("FAKE_DOCKER_MISSING", "").split(",") if r}
    found = []
    for ref in refs:
        if ref in missing and ref not in built():
            print("[]")
            fail(f"Error: No such image: {ref}")
        digest = "sha256:" + hashlib.sha256(ref.encode()).hexdigest()
        found.append({
            "Id": ref if ref.startswith("sha256:") else digest,
            "RepoTags": [] if ref.startswith("sha256:") else [ref],
            "Config": {"Env": ["PATH=" + IMAGE_PATH, "LANG=C.UTF-8"], "Cmd": ["sh"]},
            "Os": "linux",
            "Architecture": "amd64",
        })
    print(json.dumps(found))


def network_inspect(names):
    print(json.dumps([{
        "Name": "bridge",
        "Id": "f00dbabe" * 8,
        "Driver": "bridge",
        "Scope": "local",
        "IPAM": {"Driver": "default", "Config": [{"Subnet": "172.17.0.0/16", "Gateway": GATEWAY}]},
    } for _ in names]))


def build():
    args = [ARGV[i + 1] for i, arg in enumerate(ARGV[:-1]) if arg == "--build-arg"]
    base = next((a.partition("=")[2] for a in args if a.startswith("BASE_IMAGE=")), "?")
    for line in (
        "#0 building with \"default\" instance using docker driver",
        "#1 [internal] load build definition from Containerfile",
        "#2 [1/3] FROM " + base,
        "#3 exporting to image",
    ):
        print(line, file=sys.stderr, flush=True)
    if os.environ.get("FAKE_DOCKER_BUILD_FAIL") == "1":
        fail("ERROR: failed to solve: process \"/bin/sh -c sh -c $AGENT_INSTALL\" exit code: 1")
    tags = [ARGV[i + 1] for i, arg in enumerate(ARGV[:-1]) if arg in ("--tag", "-t")]
    with open(BUILT, "a", encoding="utf-8") as f:
        f.writelines(tag + "\n" for tag in tags)
    for tag in tags:
        print("#3 naming to docker.io/" + tag + " done", file=sys.stderr, flush=True)


def env_of_run():
    values = {}
    path = option("--env-file")
    with open(path, encoding="utf-8") as f:
        for line in f:
            name, _, value = line.rstrip("\n").partition("=")
            values[name] = value
    return values


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.unix_path)


def run_dir():
    # The host folder of the `--volume HOST:/run/aileron:rw` mount: the session's sockets.
    for i, arg in enumerate(ARGV[:-1]):
        if arg == "--volume" and ARGV[i + 1].endswith(":" + RUN_DIR + ":rw"):
            return ARGV[i + 1][: -len(":" + RUN_DIR + ":rw")]
    return None


def status(sock, path, token):
    connection = UnixConnection(sock)
    try:
        connection.request("GET", path, headers={"Authorization": "Bearer " + token})
        return connection.getresponse().status
    except OSError as error:
        return "unreachable: " + type(error).__name__
    finally:
        connection.close()


def tunnel(sock, host):
    connection = UnixConnection(sock)
    try:
        connection.request("CONNECT", host + ":443", headers={"Host": host + ":443"})
        return connection.getresponse().status
    except OSError as error:
        return "unreachable: " + type(error).__name__
    finally:
        connection.close()


def probe():
    daemon_json = os.environ.get("FAKE_DOCKER_DAEMON_JSON")
    if not daemon_json:
        return {}
    env = env_of_run()
    with open(daemon_json, encoding="utf-8") as f:
        master = json.load(f)["token"]
    found = run_dir()
    if found is None:
        return {"probe": "no " + RUN_DIR + " mount"}
    # The bridge forwards AILERON_API_URL's port to api.sock: the same path, over the socket.
    path = urllib.parse.urlsplit(env["AILERON_API_URL"]).path + "/actions"
    api = os.path.join(found, "api.sock")
    result = {
        "session": status(api, path, env["AILERON_TOKEN"]),
        "master": status(api, path, master),
    }
    egress = os.path.join(found, "egress.sock")
    if os.path.exists(egress):
        result["egress"] = tunnel(egress, EGRESS_PROBE_HOST)
    return {"probe": result}


def main():
    words = [a for a in ARGV if not a.startswith("-")]
    head = words[:2]
    if os.environ.get("FAKE_DOCKER_BROKEN") == "1":
        # What a docker CLI with no engine behind it does: the client half, then the error.
        log()
        if head[:1] == ["version"]:
            client = {"Version": VERSION, "ApiVersion": "1.47", "Os": "linux", "Arch": "amd64"}
            print(json.dumps({"Client": client, "Server": None}))
        fail(DAEMON_DOWN)
    if head[:1] == ["version"]:
        log()
        version()
    elif head == ["image", "inspect"]:
        log()
        image_inspect(words[2:])
    elif head == ["network", "inspect"]:
        log()
        network_inspect(words[2:])
    elif head == ["buildx", "version"]:
        log()
        if os.environ.get("FAKE_DOCKER_NO_BUILDX") == "1":
            fail("docker: unknown command: docker buildx", 1)
        print("github.com/docker/buildx v0.19.3 stand-in")
    elif head == ["buildx", "build"] or head[:1] == ["build"]:
        log()
        build()
    elif head[:1] == ["run"] or head == ["container", "run"]:
        if "aileron-check" in ARGV:
            log()
            check = os.environ.get("FAKE_DOCKER_CHECK_FAIL")
            if check:
                print(f"aileron-check-failed: {check}: the stand-in fails the {check} check")
                sys.exit(3)
            print("aileron-check: ok")
        else:
            extra = probe()
            log(**extra)
            sys.exit(int(os.environ.get("FAKE_DOCKER_EXIT", "0")))
    else:
        log()
        fail("fake docker: unsupported command: " + " ".join(ARGV), 125)


main()
"""


def _script() -> str:
    return (
        _SCRIPT.replace("__GATEWAY__", repr(GATEWAY))
        .replace("__IMAGE_PATH__", repr(IMAGE_PATH))
        .replace("__DAEMON_DOWN__", repr(DAEMON_DOWN))
        .replace("__VERSION__", repr(DOCKER_VERSION))
        .replace("__RUN_DIR__", repr(RUN_DIR))
        .replace("__EGRESS_PROBE_HOST__", repr(EGRESS_PROBE_HOST))
    )


# The `run` options that take a value (the others used here are flags).
_VALUE_OPTIONS = frozenset(
    {
        "--name",
        "--network",
        "--user",
        "--userns",
        "--add-host",
        "--env-file",
        "--env",
        "--volume",
        "--workdir",
        "--label",
        "--cap-drop",
        "--security-opt",
        "--pids-limit",
        "--memory",
        "--tmpfs",
    }
)


@dataclass(frozen=True)
class RunArgs:
    """A recorded ``docker run`` / ``docker container run``, parsed."""

    options: dict[str, list[str]]
    """Each option that takes a value, with its values in order."""
    flags: frozenset[str]
    image: str
    command: list[str]

    def one(self, name: str) -> str:
        """The single value of option ``name``."""
        values = self.options.get(name, [])
        assert len(values) == 1, f"{name}: {values}"
        return values[0]


def parse_run(argv: Sequence[str]) -> RunArgs:
    """``argv`` (without the program) of a run, split into options, image and command."""
    words = list(argv)
    if words[:2] == ["container", "run"]:
        words = words[2:]
    else:
        assert words[:1] == ["run"], words
        words = words[1:]
    options: dict[str, list[str]] = {}
    flags: set[str] = set()
    i = 0
    while i < len(words) and words[i].startswith("-"):
        word = words[i]
        if word in _VALUE_OPTIONS:
            options.setdefault(word, []).append(words[i + 1])
            i += 2
        else:
            assert "=" not in word, f"unexpected option form {word}"
            flags.add(word)
            i += 1
    return RunArgs(options, frozenset(flags), words[i], words[i + 1 :])


@dataclass(frozen=True)
class Call:
    """One invocation of the stand-in."""

    argv: list[str]
    """The whole argv, the program (the stand-in's path) first."""
    env_file: str | None
    """The text of the ``--env-file`` it was given, read while it ran."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def args(self) -> list[str]:
        return self.argv[1:]

    @property
    def kind(self) -> str:
        """``version``, ``image inspect``, ``network inspect``, ``build``, ``check``, ``run``
        or ``other``."""
        words = [a for a in self.args if not a.startswith("-")]
        if words[:1] == ["version"]:
            return "version"
        if words[:2] in (["image", "inspect"], ["network", "inspect"]):
            return " ".join(words[:2])
        if words[:2] == ["buildx", "build"] or words[:1] == ["build"]:
            return "build"
        if words[:1] == ["run"] or words[:2] == ["container", "run"]:
            return "check" if "aileron-check" in self.args else "run"
        return "other"

    @property
    def run(self) -> RunArgs:
        return parse_run(self.args)

    def env(self) -> dict[str, str]:
        """The env file's variables."""
        assert self.env_file is not None, "this call had no --env-file"
        pairs = (line.partition("=") for line in self.env_file.splitlines())
        return {name: value for name, _, value in pairs}


@dataclass(frozen=True)
class FakeDocker:
    """An installed stand-in: its bin directory, its path and its log."""

    bindir: Path
    log: Path

    @property
    def path(self) -> Path:
        return self.bindir / "docker"

    def env(
        self, base: Mapping[str, str], *, path: str | None = None, **knobs: str
    ) -> dict[str, str]:
        """``base`` with the stand-in first on PATH (or PATH = ``path``) and the knobs set
        (``missing="a,b"`` sets ``FAKE_DOCKER_MISSING`` and so on)."""
        env = {k: v for k, v in base.items() if not k.startswith("FAKE_DOCKER_")}
        env["PATH"] = path if path is not None else f"{self.bindir}{os.pathsep}{base['PATH']}"
        env["FAKE_DOCKER_LOG"] = str(self.log)
        for name, value in knobs.items():
            env[f"FAKE_DOCKER_{name.upper()}"] = value
        return env

    def calls(self) -> list[Call]:
        """Every recorded invocation, in order."""
        if not self.log.exists():
            return []
        calls = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            argv, env_file = data.pop("argv"), data.pop("env_file")
            calls.append(Call(argv=argv, env_file=env_file, extra=data))
        return calls

    def of_kind(self, kind: str) -> list[Call]:
        return [call for call in self.calls() if call.kind == kind]


def install(bindir: Path) -> FakeDocker:
    """Write the stand-in ``docker`` into ``bindir`` (its log beside it)."""
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / "docker"
    path.write_text(f"#!{sys.executable}\n{_script()}", encoding="utf-8")
    path.chmod(0o755)
    return FakeDocker(bindir=bindir, log=bindir.parent / f"{bindir.name}-docker.log")
