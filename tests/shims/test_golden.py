"""Golden files: a fixed input gives byte-exact tools.txt and shims, in any input order.

Regenerate after a deliberate change with ``AILERON_REGEN_GOLDEN=1 hatch run test:pytest
tests/shims/test_golden.py`` and review the diff. The package version is written as
``@VERSION@`` in the golden files, so a release's version bump does not touch them.
"""

from __future__ import annotations

import os
import random
import shutil
from typing import Any

from shims.support import GOLDEN, generate_from, golden_input

from aileron_shims import ShimSet, Skipped, __version__, from_api, generate

EXPECTED = GOLDEN / "expected"
VERSION_MARK = "@VERSION@"


def files_of(shims: ShimSet) -> dict[str, bytes]:
    """Every golden file by its path under ``expected/``."""
    skipped = "".join(f"{s.name}: {s.reason}\n" for s in shims.skipped)
    files = {"tools.txt": shims.tools_txt, "skipped.txt": skipped}
    files |= {f"bin/{name}": text for name, text in shims.shims.items()}
    return {path: text.replace(__version__, VERSION_MARK).encode() for path, text in files.items()}


def stored() -> dict[str, bytes]:
    return {
        p.relative_to(EXPECTED).as_posix(): p.read_bytes()
        for p in sorted(EXPECTED.rglob("*"))
        if p.is_file()
    }


def regenerate(files: dict[str, bytes]) -> None:
    shutil.rmtree(EXPECTED, ignore_errors=True)
    for path, data in files.items():
        target = EXPECTED / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def test_golden_files_match_byte_for_byte() -> None:
    """tools.txt, skipped.txt and every shim equal the stored golden files exactly."""
    assert __version__ not in (GOLDEN / "input.json").read_text()
    files = files_of(generate_from(golden_input()))
    if os.environ.get("AILERON_REGEN_GOLDEN") == "1":
        regenerate(files)
    expected = stored()
    assert sorted(files) == sorted(expected)
    for path, data in files.items():
        assert data == expected[path], f"{path} differs from tests/shims/golden/expected/{path}"


def test_golden_input_gives_the_documented_tools_and_skips() -> None:
    """The golden input shows each rule: a system name prefixed, -2 on collision,
    spec-derived ops, skips, drops."""
    shims = generate_from(golden_input())
    assert shims.tools_txt == (
        "aileron-echo\tgithub://acme/aileron-connector-echo -- installed Aileron connector used"
        " by actions: acme-shout\n"
        "aileron-echo-2\tlocal://echo -- installed Aileron connector used by actions:"
        " echo-careful, echo-say\n"
        "issues\tgithub://aileron-examples/issues -- Aileron connector operations:"
        " issues.create, issues.list\n"
    )
    assert list(shims.shims) == ["aileron-echo", "aileron-echo-2", "issues"]
    assert [s.name for s in shims.skipped] == ["local://connector-goose", "take-note"]
    assert "'goose'" in shims.skipped[0].reason and "fetch-page" in shims.skipped[0].reason
    assert "requires no connector" in shims.skipped[1].reason
    assert all("old-echo" not in text for text in shims.shims.values())
    assert all(isinstance(s, Skipped) for s in shims.skipped)


def shuffled(document: dict[str, Any], seed: int) -> dict[str, Any]:
    """The document with every list a shim does not order by declaration shuffled."""
    rng = random.Random(seed)
    copy: dict[str, Any] = {**document}
    connectors = [dict(c) for c in document["connectors"]]
    for connector in connectors:
        tools = [dict(t) for t in connector["tools"]]
        for tool in tools:
            tool["operations"] = rng.sample(tool["operations"], len(tool["operations"]))
        connector["tools"] = rng.sample(tools, len(tools))
    actions = [dict(a) for a in document["actions"]]
    for action in actions:
        action["connectors"] = rng.sample(action["connectors"], len(action["connectors"]))
    copy["connectors"] = rng.sample(connectors, len(connectors))
    copy["actions"] = rng.sample(actions, len(actions))
    return copy


def exactly(shims: ShimSet) -> tuple[str, list[tuple[str, str]], tuple[Skipped, ...]]:
    """Everything of a ShimSet, the order of its shims included."""
    return shims.tools_txt, list(shims.shims.items()), shims.skipped


def test_input_order_does_not_matter() -> None:
    """Shuffled or reversed connectors, operations and actions give the same bytes."""
    document = golden_input()
    reference = exactly(generate_from(document))
    for seed in range(8):
        assert exactly(generate_from(shuffled(document, seed))) == reference
    connectors, actions = from_api(document["connectors"], document["actions"])
    reversed_set = generate(connectors[::-1], actions[::-1], agent_command="claude")
    assert exactly(reversed_set) == reference
