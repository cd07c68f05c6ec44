"""The TLS stand-ins for GitHub and a registry, proved with the host's own git, curl and npm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.tls_upstreams import Echo, GitHttp, NpmRegistry, TlsUpstream
from network_support import PrivateCA

TOKEN = "ghp_realTokenOfTheStandIn0123456789abcdef"
USER = "x-access-token"


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCA:
    """A private CA of the test's own."""
    return PrivateCA(tmp_path, "Stand-in Upstreams Root")


def _run(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - the host's tools with the test's own arguments
        args, capture_output=True, text=True, check=False, env=env, cwd=cwd, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _curl(upstream: TlsUpstream, ca: PrivateCA, path: str, *extra: str) -> list[str]:
    name = upstream.names[0]
    return [
        "curl", "-sS", "--cacert", str(ca.pem),
        "--resolve", f"{name}:{upstream.port}:127.0.0.1",
        *extra, upstream.url() + path,
    ]  # fmt: skip


def test_echo_answers_the_request_and_its_credential(ca: PrivateCA) -> None:
    """The echo upstream answers curl's method, path, headers and body, and echoes Authorization."""
    with TlsUpstream(ca, ["api.github.test"], Echo()) as upstream:
        out = _run(
            _curl(
                upstream,
                ca,
                "/user?x=1",
                "-i",
                "-X",
                "POST",
                "--data",
                "hello",
                "-H",
                f"Authorization: Bearer {TOKEN}",
            )  # fmt: skip
        )
    head, _, body = out.partition("\n\n")  # text mode turned CRLF into LF
    assert f"X-Echo-Authorization: Bearer {TOKEN}" in head
    echoed = json.loads(body)
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/user?x=1"
    assert echoed["body"] == "hello"
    assert ["Authorization", f"Bearer {TOKEN}"] in echoed["headers"]
    assert [r.header("Authorization") for r in upstream.requests] == [f"Bearer {TOKEN}"]


def test_an_untrusting_client_is_refused(ca: PrivateCA) -> None:
    """The upstream's certificate comes from the private CA: curl without that CA refuses it."""
    with TlsUpstream(ca, ["api.github.test"], Echo()) as upstream:
        args = _curl(upstream, ca, "/user")
        args[args.index("--cacert") + 1] = "/etc/ssl/certs/ca-certificates.crt"
        done = subprocess.run(args, capture_output=True, check=False, timeout=60)  # noqa: S603
    assert done.returncode == 60  # curl: peer certificate cannot be authenticated
    assert upstream.requests == []


def _git_env(ca: PrivateCA) -> dict[str, str]:
    return {
        **os.environ,
        "GIT_SSL_CAINFO": str(ca.pem),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "GIT_CONFIG_NOSYSTEM": "1",
    }


@pytest.fixture
def git_upstream(ca: PrivateCA, tmp_path: Path) -> Iterator[tuple[TlsUpstream, GitHttp]]:
    """The git stand-in with one repository, repo.git."""
    git = GitHttp(tmp_path / "repos", USER, TOKEN)
    git.create("repo.git")
    with TlsUpstream(ca, ["git.github.test"], git) as upstream:
        yield upstream, git


def test_git_clone_and_chunked_push_with_the_token(
    ca: PrivateCA, git_upstream: tuple[TlsUpstream, GitHttp], tmp_path: Path
) -> None:
    """git clones and pushes a 1 MiB commit (chunked) over TLS with the token in the URL."""
    upstream, git = git_upstream
    resolve = f"http.curloptResolve=git.github.test:{upstream.port}:127.0.0.1"
    url = f"https://{USER}:{TOKEN}@git.github.test:{upstream.port}/repo.git"
    env = _git_env(ca)
    work = tmp_path / "clone"
    _run(["git", "-c", resolve, "clone", "-q", url, str(work)], env=env)
    assert (work / "README.md").read_text() == "# stand-in\n"
    (work / "big.bin").write_bytes(os.urandom(1024 * 1024))
    identity = ["-c", "user.name=Agent", "-c", "user.email=agent@example.test"]
    _run(["git", "add", "big.bin"], env=env, cwd=work)
    _run(["git", *identity, "commit", "-q", "-m", "one mebibyte"], env=env, cwd=work)
    _run(["git", "-c", resolve, "push", "-q", "origin", "main"], env=env, cwd=work)
    assert git.log("repo.git") == ["one mebibyte", "initial"]
    assert set(git.credentials) == {(USER, TOKEN)}
    pushes = [r for r in upstream.requests if r.path.endswith("/git-receive-pack")]
    assert pushes and pushes[-1].header("Transfer-Encoding") == "chunked"
    assert len(pushes[-1].body) > 1024 * 1024


def test_git_without_the_token_is_refused(
    ca: PrivateCA, git_upstream: tuple[TlsUpstream, GitHttp], tmp_path: Path
) -> None:
    """A wrong token gets 401: git cannot clone, and the server kept what it was sent."""
    upstream, git = git_upstream
    resolve = f"http.curloptResolve=git.github.test:{upstream.port}:127.0.0.1"
    url = f"https://{USER}:wrong@git.github.test:{upstream.port}/repo.git"
    done = subprocess.run(  # noqa: S603
        ["git", "-c", resolve, "clone", "-q", url, str(tmp_path / "c")],  # noqa: S607
        capture_output=True, text=True, check=False, env=_git_env(ca), timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "401" in done.stderr or "Authentication failed" in done.stderr
    assert (USER, "wrong") in git.credentials
    assert (USER, TOKEN) not in git.credentials


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed on this host")
def test_npm_whoami_and_publish_with_the_token(ca: PrivateCA, tmp_path: Path) -> None:
    """npm whoami and npm publish work against the registry stand-in with the token in .npmrc."""
    registry = NpmRegistry(TOKEN)
    with TlsUpstream(ca, ["localhost"], registry) as upstream:
        # npm has no --resolve: the stand-in is named localhost for the host's own npm.
        base = f"https://localhost:{upstream.port}/"
        npmrc = tmp_path / ".npmrc"
        npmrc.write_text(f"//localhost:{upstream.port}/:_authToken={TOKEN}\n")
        package = tmp_path / "pkg"
        package.mkdir()
        manifest = {"name": "stand-in-package", "version": "1.0.0"}
        (package / "package.json").write_text(json.dumps(manifest))
        env = {
            **os.environ,
            "NODE_EXTRA_CA_CERTS": str(ca.pem),
            "npm_config_userconfig": str(npmrc),
            "npm_config_globalconfig": str(tmp_path / "no-global-npmrc"),  # not the host's cafile
            "npm_config_cache": str(tmp_path / "npm-cache"),
            "npm_config_update_notifier": "false",
        }
        whoami = _run(["npm", "whoami", "--registry", base], env=env)
        _run(["npm", "publish", "--registry", base], env=env, cwd=package)
    assert whoami.strip() == "stand-in-user"
    assert "stand-in-package" in registry.published
    assert set(registry.tokens) == {TOKEN}
