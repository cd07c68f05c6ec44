"""A separate process that writes to a vault, for the multi-process tests.

Usage: ``python writer_child.py VAULT PASSPHRASE PREFIX COUNT`` writes COUNT distinct entries
``PREFIX/<i>`` (value ``PREFIX-<i>``); with COUNT ``forever`` it rewrites ten entries in a
loop, rotating the data key now and then, until it is killed. Prints ``ready`` once unlocked,
then waits for a line on stdin before it starts.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from aileron_core.vault import Vault


def main(argv: list[str]) -> int:
    """Run the writer; returns the exit status."""
    path, passphrase, prefix, count = argv
    vault = Vault.open(Path(path))
    vault.unlock(passphrase)
    print("ready", flush=True)
    sys.stdin.readline()  # wait for "go", so that concurrent writers really overlap
    if count == "forever":
        for i in itertools.count():
            vault.put(f"{prefix}/{i % 10}", str(i), {"i": str(i)})
            if i % 7 == 3:
                vault.rotate()
    for i in range(int(count)):
        vault.put(f"{prefix}/{i}", f"{prefix}-{i}")
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
