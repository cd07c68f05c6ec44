"""The ``github_app`` source against the local GitHub App fake, with a clock the test moves:
one installation token per lifetime, a fresh one five minutes before it expires or after a
401, every JWT checked by the fake, and the private key in no error, audit record or log."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes.github_app import FakeGitHubApp
from sources.support import Clock, audit_log, disk_text, vault_with

from aileron_cli.daemon.run.credentials import CredentialUnavailable
from aileron_cli.daemon.run.sources.github_app import REFRESH_BEFORE_S, GitHubAppSource
from aileron_core.credential_sources import GitHubAppConfig

NAME = "app/github/default"
PEM_BODY_LINE = 2  # a line of the key's base64 body: what a leak would contain


@pytest.fixture
def github() -> Iterator[FakeGitHubApp]:
    """The fake GitHub, minting hour-long tokens."""
    with FakeGitHubApp() as fake:
        yield fake


def settings(github: FakeGitHubApp, **changes: object) -> str:
    value = {
        "app_id": str(github.app_id),
        "installation_id": str(github.installation_id),
        "private_key": github.private_pem,
        "api_url": github.url,
    }
    return json.dumps({**value, **changes})


def key_line(pem: str) -> str:
    return pem.splitlines()[PEM_BODY_LINE]


def claims(jwt: str) -> dict[str, object]:
    part = jwt.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_one_token_is_minted_per_lifetime_and_renewed_five_minutes_before_expiry(
    tmp_path: Path, github: FakeGitHubApp
) -> None:
    """Uses within the token's life share one mint; at expires_at - 5 min a new one is minted;
    the fake verified every JWT with the App's public key (none rejected)."""
    github.lifetime_s = REFRESH_BEFORE_S + 10  # the fake checks the JWT's times: little drift
    clock = Clock(time.time())

    async def scenario() -> list[bytes]:
        vault, binding = await vault_with(tmp_path, NAME, settings(github), "github_app")
        source = GitHubAppSource(vault, audit_log(tmp_path), clock=clock)
        first = [await source.secret(binding) for _ in range(3)]
        clock.now += github.lifetime_s - REFRESH_BEFORE_S - 5
        first.append(await source.secret(binding))
        clock.now += 10
        return [*first, await source.secret(binding)]

    tokens = asyncio.run(scenario())
    assert len(set(tokens[:4])) == 1 and tokens[4] != tokens[0]
    assert github.mints == 2 and github.jwt_checked == 2 and github.jwt_rejected == 0
    assert {t.decode() for t in tokens} == set(github.tokens)


def test_the_jwt_is_rs256_backdated_a_minute_and_lives_nine(
    tmp_path: Path, github: FakeGitHubApp
) -> None:
    """The JWT's iat is a minute before now, exp nine minutes after, iss the App id."""
    now = time.time()

    async def scenario() -> None:
        vault, binding = await vault_with(tmp_path, NAME, settings(github), "github_app")
        await GitHubAppSource(vault, audit_log(tmp_path), clock=Clock(now)).secret(binding)

    asyncio.run(scenario())
    (jwt,) = github.jwts
    header = json.loads(base64.urlsafe_b64decode(jwt.split(".")[0] + "=="))
    assert header == {"alg": "RS256", "typ": "JWT"}
    assert claims(jwt) == {"iat": int(now) - 60, "exp": int(now) + 540, "iss": github.app_id}


def test_a_refused_token_is_forgotten_and_the_next_use_mints_another(
    tmp_path: Path, github: FakeGitHubApp
) -> None:
    """After invalidate() (the runner saw a 401) the cached token is not handed out again."""

    async def scenario() -> tuple[bytes, bytes]:
        vault, binding = await vault_with(tmp_path, NAME, settings(github), "github_app")
        source = GitHubAppSource(vault, audit_log(tmp_path))
        first = await source.secret(binding)
        source.invalidate(binding)
        return first, await source.secret(binding)

    first, second = asyncio.run(scenario())
    assert first != second and github.mints == 2


def test_concurrent_uses_share_one_mint(tmp_path: Path, github: FakeGitHubApp) -> None:
    """Ten uses at once before any token exists mint one token, not ten."""

    async def scenario() -> list[bytes]:
        vault, binding = await vault_with(tmp_path, NAME, settings(github), "github_app")
        source = GitHubAppSource(vault, audit_log(tmp_path))
        return list(await asyncio.gather(*(source.secret(binding) for _ in range(10))))

    assert len(set(asyncio.run(scenario()))) == 1 and github.mints == 1


def test_each_mint_is_audited_without_the_token_or_the_key(
    tmp_path: Path, github: FakeGitHubApp
) -> None:
    """binding.minted names the binding, the installation and the expiry; the audit log holds
    neither the token nor any line of the private key."""

    async def scenario() -> bytes:
        vault, binding = await vault_with(tmp_path, NAME, settings(github), "github_app")
        log = audit_log(tmp_path)
        token = await GitHubAppSource(vault, log).secret(binding)
        await log.aclose()
        return token

    token = asyncio.run(scenario())
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    minted = [json.loads(line) for line in lines if '"binding.minted"' in line]
    assert len(minted) == 1
    payload = minted[0]["payload"]
    assert payload["binding"] == NAME and payload["installation_id"] == "777"
    assert payload["expires_at"].endswith("+00:00")
    assert token.decode() not in "\n".join(lines)
    assert key_line(github.private_pem) not in "\n".join(lines)


@pytest.mark.parametrize(
    ("changes", "reason", "status"),
    [
        ({"installation_id": "1"}, "github_app_refused", "404"),
        ({"app_id": "999"}, "github_app_refused", "401"),
    ],
)
def test_a_mint_github_refuses_names_the_status_not_the_key(
    tmp_path: Path, github: FakeGitHubApp, changes: dict[str, str], reason: str, status: str
) -> None:
    """A wrong installation (404) or App id (401: the JWT's iss) is binding_required naming
    GitHub's status and message; no line of the private key is in the error."""

    async def scenario() -> None:
        vault, binding = await vault_with(tmp_path, NAME, settings(github, **changes), "github_app")
        await GitHubAppSource(vault, audit_log(tmp_path)).secret(binding)

    with pytest.raises(CredentialUnavailable) as caught:
        asyncio.run(scenario())
    error = caught.value
    assert error.code == "binding_required" and error.reason == reason
    assert f"answered {status}" in error.message and error.details["status"] == int(status)
    assert key_line(github.private_pem) not in f"{error.message} {error.hint} {error.details}"


def test_a_jwt_signed_by_another_key_is_rejected_by_the_fake(
    tmp_path: Path, github: FakeGitHubApp
) -> None:
    """The fake really checks the signature: another RSA key's JWT is a 401, no token."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()

    async def scenario() -> None:
        vault, binding = await vault_with(
            tmp_path, NAME, settings(github, private_key=pem), "github_app"
        )
        await GitHubAppSource(vault, audit_log(tmp_path)).secret(binding)

    with pytest.raises(CredentialUnavailable, match="answered 401"):
        asyncio.run(scenario())
    assert github.jwt_rejected == 1 and github.mints == 0


def test_a_key_that_is_not_rsa_is_refused_before_anything_is_sent(
    tmp_path: Path, github: FakeGitHubApp
) -> None:
    """A PEM that is not an RSA private key is invalid_source_config; nothing reaches GitHub
    and the error quotes none of it."""
    bogus = (
        "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END RSA PRIVATE KEY-----\n"
    )

    async def scenario() -> None:
        vault, binding = await vault_with(
            tmp_path, NAME, settings(github, private_key=bogus), "github_app"
        )
        await GitHubAppSource(vault, audit_log(tmp_path)).secret(binding)

    with pytest.raises(CredentialUnavailable) as caught:
        asyncio.run(scenario())
    assert caught.value.reason == "invalid_source_config"
    assert "bm90IGEga2V5" not in caught.value.message
    assert github.jwts == []


def test_an_unreachable_api_is_binding_required_naming_the_url(tmp_path: Path) -> None:
    """A closed port is github_app_unreachable naming the API URL (and no key)."""
    with FakeGitHubApp() as github:
        value = settings(github)
        url = github.url
    # The fake is closed now: its port refuses.

    async def scenario() -> None:
        vault, binding = await vault_with(tmp_path, NAME, value, "github_app")
        await GitHubAppSource(vault, audit_log(tmp_path)).secret(binding)

    with pytest.raises(CredentialUnavailable) as caught:
        asyncio.run(scenario())
    assert caught.value.reason == "github_app_unreachable" and url in caught.value.message


def test_a_locked_vault_hands_out_no_cached_token(tmp_path: Path, github: FakeGitHubApp) -> None:
    """Once the vault locks, the cached token is not returned (VaultLocked) until it unlocks."""
    from aileron_core.vault import VaultLocked

    async def scenario() -> None:
        vault, binding = await vault_with(tmp_path, NAME, settings(github), "github_app")
        source = GitHubAppSource(vault, audit_log(tmp_path))
        token = await source.secret(binding)
        vault.lock()
        with pytest.raises(VaultLocked):
            await source.secret(binding)
        await vault.unlock("pw")
        assert await source.secret(binding) == token

    asyncio.run(scenario())
    assert github.mints == 1


def test_settings_round_trip_and_refuse_a_plain_http_api() -> None:
    """The vault value parses back to itself; http is refused except to localhost; ids are
    numbers."""
    from aileron_core.credential_sources import SourceConfigError

    pem = "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"
    config = GitHubAppConfig(app_id="1", installation_id="2", private_key=pem)
    assert GitHubAppConfig.parse(config.dumps().encode()) == config
    assert pem not in repr(config)
    for url in ("http://api.github.com", "ftp://x", "https://u:p@h", "https://h/?q=1"):
        with pytest.raises(SourceConfigError, match="API URL"):
            GitHubAppConfig.parse(
                json.dumps({**json.loads(config.dumps()), "api_url": url}).encode()
            )
    local = {**json.loads(config.dumps()), "api_url": "http://127.0.0.1:9/"}
    assert GitHubAppConfig.parse(json.dumps(local).encode()).api_url == "http://127.0.0.1:9"
    with pytest.raises(SourceConfigError, match="app_id"):
        GitHubAppConfig.parse(json.dumps({**json.loads(config.dumps()), "app_id": "x1"}).encode())


def test_nothing_on_disk_holds_a_token_after_use(tmp_path: Path, github: FakeGitHubApp) -> None:
    """The installation token stays in memory: no file the test's vault and audit log wrote
    holds it (nor, outside the encrypted vault, the key)."""

    async def scenario() -> bytes:
        vault, binding = await vault_with(tmp_path, NAME, settings(github), "github_app")
        log = audit_log(tmp_path)
        token = await GitHubAppSource(vault, log).secret(binding)
        await log.aclose()
        return token

    token = asyncio.run(scenario()).decode()
    text = disk_text(tmp_path)
    assert token not in text and key_line(github.private_pem) not in text
