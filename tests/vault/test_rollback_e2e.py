"""Issue #16, acceptance 3: an older vault.json put back is refused by a real daemon, at unlock
and while unlocked, until `aileron vault restore-accept` moves its generation forward."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audit.completeness_support import PASSPHRASE, Home

from aileron_core.client import ApiError
from aileron_core.paths import Layout

GOLDEN_V1 = Path(__file__).with_name("golden") / "v1-default.json"
GOLDEN_V1_PASSPHRASE = "golden défault passphrase"


@pytest.fixture
def home(layout: Layout) -> Iterator[Home]:
    """The test's home, driven through the real CLI; its daemon is stopped afterwards."""
    driven = Home(layout)
    try:
        yield driven
    finally:
        driven.run("daemon", "stop", ok=False)


def generation(path: Path) -> int:
    """The generation written in a vault file."""
    value = json.loads(path.read_bytes())["vault"].get("generation", 0)
    assert isinstance(value, int)
    return value


def put(home: Home, path: str, value: str) -> None:
    done = home.run("vault", "put", path, stdin=value + "\n", unlock=True)
    assert done.returncode == 0, done.stderr


def entries(home: Home) -> list[str]:
    done = home.run("vault", "list", "--json", unlock=True)
    return sorted(e["path"] for e in json.loads(done.stdout))


def records(home: Home, kind: str) -> list[dict[str, Any]]:
    return [r for r in home.records() if r["type"] == kind]


def test_older_vault_is_refused_at_unlock_until_restore_accept(home: Home, tmp_path: Path) -> None:
    """Unlock of an older vault.json exits 1 (vault_rolled_back, both generations) and is
    audited; restore-accept unlocks it, audits both generations, and verify still passes."""
    home.run("vault", "init", unlock=True)
    put(home, "keep/me", "kept")
    put(home, "gone/soon", "deleted later")
    aside = tmp_path / "vault.json.old"
    shutil.copy2(home.layout.vault, aside)
    older = generation(aside)
    home.run("vault", "delete", "gone/soon", unlock=True)
    home.run("vault", "lock")
    newer = generation(home.layout.vault)
    assert newer > older
    shutil.copy2(aside, home.layout.vault)

    refused = home.run("vault", "unlock", ok=False, unlock=True)
    assert refused.returncode == 1
    assert "an older copy of the vault was put back" in refused.stderr
    assert f"generation {older}" in refused.stderr and f"generation {newer}" in refused.stderr
    assert "aileron vault restore-accept" in refused.stderr
    with home.client() as client, pytest.raises(ApiError) as raised:
        client.post("vault/unlock", {"passphrase": PASSPHRASE})
    assert (raised.value.status, raised.value.code) == (409, "vault_rolled_back")
    assert dict(raised.value.details) == {"generation": older, "expected": newer}
    failed = records(home, "vault.unlock_failed")
    assert [(r["payload"]["reason"], r["payload"]["generation"]) for r in failed] == [
        ("vault_rolled_back", older)
    ] * 2
    assert failed[0]["payload"]["expected"] == newer
    assert json.loads(home.run("vault", "status", "--json").stdout)["state"] == "locked"

    accepted = home.run("vault", "restore-accept", unlock=True)
    assert "accepted the restored vault" in accepted.stdout
    assert json.loads(home.run("vault", "status", "--json").stdout)["state"] == "unlocked"
    assert entries(home) == ["gone/soon", "keep/me"]  # the restored file, deleted entry back
    restored = records(home, "vault.restore_accepted")
    assert len(restored) == 1
    payload = restored[0]["payload"]
    assert (payload["found_generation"], payload["head_generation"]) == (older, newer)
    assert payload["generation"] > newer == generation(home.layout.vault) - 1
    assert home.heads()[-1]["reason"] == "restore"
    assert home.verify()[0] == 0
    home.run("vault", "lock")
    home.run("vault", "unlock", unlock=True)  # the generation moved forward: unlocks again
    home.stop()
    code, out = home.verify()
    assert code == 0, out


def test_older_vault_put_back_while_unlocked_is_refused_at_the_next_operation(
    home: Home, tmp_path: Path
) -> None:
    """A vault.json rolled back under a running, unlocked daemon is refused at the next vault
    operation, which does not succeed."""
    home.run("vault", "init", unlock=True)
    put(home, "a/one", "1")
    aside = tmp_path / "vault.json.old"
    shutil.copy2(home.layout.vault, aside)
    put(home, "a/two", "2")
    shutil.copy2(aside, home.layout.vault)
    with home.client() as client, pytest.raises(ApiError) as raised:
        client.get("vault/entries")
    assert raised.value.code == "vault_rolled_back"
    details = raised.value.details
    assert (details["generation"], details["expected"]) == (
        generation(aside),
        generation(aside) + 1,
    )
    refused = home.run("vault", "list", ok=False)
    assert refused.returncode == 1, refused.stdout
    written = home.run("vault", "put", "a/three", stdin="3\n", ok=False)
    assert written.returncode == 1
    assert generation(home.layout.vault) == generation(aside)


def test_format_1_copy_of_a_vault_with_signed_heads_is_refused(home: Home) -> None:
    """A format-1 vault.json (no audit key) of the same vault put back after heads were
    signed with its audit key is refused as rolled back."""
    golden = Home(home.layout, home.env, passphrase=GOLDEN_V1_PASSPHRASE)
    home.layout.home.mkdir(parents=True, exist_ok=True)
    shutil.copy2(GOLDEN_V1, home.layout.vault)
    golden.run("vault", "unlock", unlock=True)  # upgraded to format 2, heads signed
    assert json.loads(home.layout.vault.read_bytes())["vault"]["version"] == 2
    assert home.heads()[-1]["vault_id"] == json.loads(GOLDEN_V1.read_bytes())["vault"]["vault_id"]
    golden.run("vault", "lock")
    shutil.copy2(GOLDEN_V1, home.layout.vault)
    refused = golden.run("vault", "unlock", ok=False, unlock=True)
    assert refused.returncode == 1
    assert "generation 0" in refused.stderr, refused.stderr
    failed = records(home, "vault.unlock_failed")
    assert [r["payload"]["reason"] for r in failed] == ["vault_rolled_back"]
    assert json.loads(home.run("vault", "status", "--json").stdout)["state"] == "locked"


def test_another_vault_unlocked_in_place_starts_new_heads(home: Home, tmp_path: Path) -> None:
    """Another of the user's vaults put in place and unlocked is not a rollback: the old heads
    are kept aside (audited as `audit.heads_archived`) and verify still passes."""
    home.run("vault", "init", unlock=True)
    home.run("vault", "lock")
    home.run("daemon", "stop")
    old_vault_id = json.loads(home.layout.vault.read_bytes())["vault"]["vault_id"]
    other_home = tmp_path / "other"
    other = Home(Layout(other_home), dict(os.environ, AILERON_HOME=str(other_home)))
    try:
        other.run("vault", "init", unlock=True)
    finally:
        other.run("daemon", "stop", ok=False)
    shutil.copyfile(other.layout.vault, home.layout.vault)
    home.run("vault", "unlock", unlock=True)
    kept = home.layout.home / f"audit.heads.{old_vault_id}.jsonl"
    assert kept.exists()
    archived = [r for r in home.records() if r["type"] == "audit.heads_archived"]
    assert [r["payload"]["kept_as"] for r in archived] == [kept.name]
    assert home.verify()[0] == 0
