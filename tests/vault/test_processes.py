"""Real processes: concurrent writers lose nothing, and a writer killed mid-write breaks nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from vault.support import PASSPHRASE, new_vault, read_everything

from aileron_core.vault import Vault

CHILD = Path(__file__).with_name("writer_child.py")


def spawn(path: Path, prefix: str, count: str) -> subprocess.Popen[str]:
    """Start writer_child.py on the vault and wait until it has unlocked it."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), PASSPHRASE, prefix, count],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def go(*children: subprocess.Popen[str]) -> None:
    """Let the children start writing (all at once)."""
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()


def test_concurrent_writers_in_two_processes_lose_nothing(vault_path: Path) -> None:
    """Two processes each writing 150 different entries at once: all 300 survive."""
    new_vault(vault_path)
    count = 150
    children = [spawn(vault_path, prefix, str(count)) for prefix in ("left", "right")]
    go(*children)
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0 and out.strip() == "done"
    content = read_everything(vault_path)
    expected = {
        f"{prefix}/{i}": f"{prefix}-{i}".encode()
        for prefix in ("left", "right")
        for i in range(count)
    }
    assert content == expected


def test_writer_killed_mid_write_leaves_a_consistent_vault(vault_path: Path) -> None:
    """A writer SIGKILLed mid-write, again and again, leaves a vault that opens, old or new."""
    new_vault(vault_path)
    rng = random.Random(1234)
    kills = seen_values = interrupted = 0
    # At least 12 kills, and more until two of them have hit a write half-way (a temp file left
    # behind proves it); about one kill in four does.
    while kills < 12 or (interrupted < 2 and kills < 40):
        child = spawn(vault_path, "k", "forever")
        go(child)
        time.sleep(rng.uniform(0.02, 0.25))
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
        kills += 1
        assert child.returncode == -signal.SIGKILL
        interrupted += any(p.name.endswith(".tmp") for p in vault_path.parent.iterdir())
        vault = Vault.open(vault_path)
        vault.unlock(PASSPHRASE)
        infos = vault.list()
        assert len(infos) <= 10
        for info in infos:
            value = vault.get(info.path)
            assert info.metadata == {"i": value.decode()}, "value and metadata from one write"
            assert info.path == f"k/{int(value) % 10}"
        seen_values += len(infos)
    assert seen_values > 0, "the writer never got to write: the test proved nothing"
    assert interrupted >= 1, "no kill landed during a write: the test proved nothing"
    Vault.open(vault_path).list()
    survivor = Vault.open(vault_path)
    survivor.unlock(PASSPHRASE)
    survivor.put("after", "the storm")
    assert sorted(p.name for p in vault_path.parent.iterdir()) == ["vault.json", "vault.json.lock"]
