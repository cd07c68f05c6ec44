"""Generate the version-1 golden vaults in tests/vault/golden/ (kept for reference).

Run once, from the repository root, with the project's environment::

    hatch run test:python tests/vault/make_golden.py

It refuses to overwrite existing golden files: they are a compatibility promise, and must keep
opening forever. Regenerate only with ``--force`` and only when adding a new format version's
files, never to "fix" a test.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from aileron_core.vault import DEFAULT_KDF, KdfParams, Vault

GOLDEN = Path(__file__).with_name("golden")
CHEAP = KdfParams(time_cost=1, memory_kib=8, parallelism=1)

# name -> (KDF parameters, passphrase)
VAULTS = {
    "v1-cheap.json": (CHEAP, "golden cheap passphrase ☃"),
    "v1-default.json": (DEFAULT_KDF, "golden défault passphrase"),
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
    path.with_name(name + ".lock").unlink()
    return {
        "passphrase": passphrase,
        "vault_id": vault.vault_id,
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
    expected = {name: generate(name, kdf, passphrase) for name, (kdf, passphrase) in VAULTS.items()}
    text = json.dumps(expected, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    (GOLDEN / "expected.json").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
