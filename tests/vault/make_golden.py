"""Generate the golden vaults of the current format version in tests/vault/golden/.

Run once, from the repository root, with the project's environment::

    hatch run test:python tests/vault/make_golden.py

It writes only the files of ``VAULTS`` that do not exist yet and adds them to expected.json,
keeping what is recorded there for the others. It refuses to overwrite existing golden files:
they are a compatibility promise, and must keep opening forever. The version-1 files were made
by the version-1 code (commit 18ecf64); today's code writes version 2 and cannot make them
again. ``--force`` regenerates the files of ``VAULTS`` only when adding a new format version's
files, never to "fix" a test.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from aileron_core.vault import KdfParams, Vault

GOLDEN = Path(__file__).with_name("golden")
CHEAP = KdfParams(time_cost=1, memory_kib=8, parallelism=1)

# name -> (KDF parameters, passphrase); what today's code writes (format version 2)
VAULTS = {
    "v2-cheap.json": (CHEAP, "golden v2 passphrase ☃"),
}

# Written in this order; the first entry is written twice, so its times differ.
ENTRIES: list[tuple[str, bytes | str, dict[str, str]]] = [
    ("api_key/openai/default", "sk-golden-superseded", {"type": "api_key"}),
    ("ssh/deploy", bytes(range(0, 256, 3)), {"type": "ssh_key", "label": "deploy key"}),
    ("notes/ünïcödé/☃", 'multi\nline "quoted" \\ text ☃', {}),
    ("empty", b"", {"label": ""}),
    ("api_key/openai/default", "sk-golden-0001", {"type": "api_key", "provider": "openai"}),
]


def generate(name: str, kdf: KdfParams, passphrase: str) -> dict[str, object]:
    """Create one golden vault; return what a reader must find in it."""
    path = GOLDEN / name
    vault = Vault.create(path, passphrase, kdf=kdf)
    for entry_path, value, metadata in ENTRIES:
        vault.put(entry_path, value, metadata)
    entries = {}
    for info in vault.list():
        entries[info.path] = {
            "value_base64": base64.b64encode(vault.get(info.path)).decode(),
            "metadata": info.metadata,
            "created_at": info.created_at.isoformat(),
            "updated_at": info.updated_at.isoformat(),
        }
    public = vault.audit_public_key
    assert public is not None
    path.with_name(name + ".lock").unlink()
    return {
        "passphrase": passphrase,
        "vault_id": vault.vault_id,
        "version": 2,
        "generation": vault.generation,
        "audit_public_key": base64.b64encode(public).decode(),
        "kdf": {
            "time_cost": kdf.time_cost,
            "memory_kib": kdf.memory_kib,
            "parallelism": kdf.parallelism,
        },
        "entries": entries,
    }


def main(argv: list[str]) -> int:
    """Write the golden files and expected.json; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite existing golden files")
    args = parser.parse_args(argv)
    existing = [GOLDEN / name for name in VAULTS if (GOLDEN / name).exists()]
    if existing and not args.force:
        print(f"refusing to overwrite {', '.join(map(str, existing))}", file=sys.stderr)
        return 1
    for path in existing:
        path.unlink()
    expected_path = GOLDEN / "expected.json"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    for name, (kdf, passphrase) in VAULTS.items():
        expected[name] = generate(name, kdf, passphrase)
    text = json.dumps(expected, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    expected_path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
