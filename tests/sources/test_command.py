"""The ``command`` source runs real commands: once per TTL (counted by a file the command
appends to), without a shell, stdin closed, its output stripped; a failing or hanging command
is binding_required naming the exit status, never the output."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from sources.support import Clock, vault_with

from aileron_cli.daemon.run.credentials import CredentialUnavailable
from aileron_cli.daemon.run.sources.command import CommandSource
from aileron_cli.daemon.store.bindings import Binding
from aileron_core.credential_sources import CommandConfig, SourceConfigError

NAME = "cmd/forms/default"
SECRET = "s3cr3t-from-a-command-0123456789"

COUNTING = """
import sys
with open(sys.argv[1], "a") as runs:
    runs.write("run\\n")
print(open(sys.argv[2]).read())
"""


def counting_command(tmp_path: Path, secret: str = SECRET) -> tuple[list[str], Path]:
    """A command that appends a line to ``runs`` and prints the content of a file."""
    script = tmp_path / "secret.py"
    script.write_text(COUNTING)
    runs, value = tmp_path / "runs", tmp_path / "value"
    value.write_text(secret)
    return [sys.executable, str(script), str(runs), str(value)], runs


def run_lines(runs: Path) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


async def source_for(
    tmp_path: Path,
    argv: list[str],
    ttl_s: int = 300,
    clock: Clock | None = None,
    timeout_s: float = 10.0,
) -> tuple[CommandSource, Binding]:
    vault, binding = await vault_with(
        tmp_path, NAME, json.dumps({"argv": argv, "ttl_s": ttl_s}), "command"
    )
    return CommandSource(vault, clock=clock or Clock(0.0), timeout_s=timeout_s), binding


def test_the_command_runs_once_per_ttl(tmp_path: Path) -> None:
    """Uses within the TTL share one run; once the TTL has passed, the next use runs it again."""
    argv, runs = counting_command(tmp_path)
    clock = Clock(1000.0)

    async def scenario() -> list[bytes]:
        source, binding = await source_for(tmp_path, argv, ttl_s=60, clock=clock)
        seen = [await source.secret(binding) for _ in range(3)]
        clock.now += 59
        seen.append(await source.secret(binding))
        assert run_lines(runs) == 1
        clock.now += 2
        seen.append(await source.secret(binding))
        return seen

    assert asyncio.run(scenario()) == [SECRET.encode()] * 5
    assert run_lines(runs) == 2


def test_invalidate_runs_the_command_again(tmp_path: Path) -> None:
    """After a 401 (invalidate), the next use runs the command and gets its new output."""
    argv, runs = counting_command(tmp_path)

    async def scenario() -> tuple[bytes, bytes]:
        source, binding = await source_for(tmp_path, argv)
        first = await source.secret(binding)
        (tmp_path / "value").write_text("rotated-secret")
        source.invalidate(binding)
        return first, await source.secret(binding)

    assert asyncio.run(scenario()) == (SECRET.encode(), b"rotated-secret")
    assert run_lines(runs) == 2


def test_a_ttl_of_zero_runs_the_command_at_every_use(tmp_path: Path) -> None:
    """ttl_s = 0: no reuse at all."""
    argv, runs = counting_command(tmp_path)

    async def scenario() -> None:
        source, binding = await source_for(tmp_path, argv, ttl_s=0)
        for _ in range(3):
            await source.secret(binding)

    asyncio.run(scenario())
    assert run_lines(runs) == 3


def test_no_shell_expands_the_arguments(tmp_path: Path) -> None:
    """argv is run as stored: "$HOME" and "*" reach the program literally."""

    async def scenario() -> bytes:
        source, binding = await source_for(tmp_path, ["echo", "$HOME", "*", "a;b"])
        return await source.secret(binding)

    assert asyncio.run(scenario()) == b"$HOME * a;b"


def test_stdin_is_closed_and_the_whole_output_is_kept_stripped(tmp_path: Path) -> None:
    """A command reading stdin gets end-of-file at once (it cannot prompt); a multi-line
    output is kept whole, only surrounding whitespace removed."""
    code = (
        "import sys; data = sys.stdin.read(); print('\\n  line1\\nline2 stdin=%d  \\n' % len(data))"
    )

    async def scenario() -> bytes:
        source, binding = await source_for(tmp_path, [sys.executable, "-c", code])
        return await source.secret(binding)

    assert asyncio.run(scenario()) == b"line1\nline2 stdin=0"


def test_a_failing_command_names_its_status_never_its_output(tmp_path: Path) -> None:
    """Exit status 3 is binding_required (command_failed) naming the binding and the status;
    what it printed on stdout and stderr is nowhere in the error."""
    code = f"import sys; print({SECRET!r}); print({SECRET!r}, file=sys.stderr); sys.exit(3)"

    async def scenario() -> None:
        source, binding = await source_for(tmp_path, [sys.executable, "-c", code])
        await source.secret(binding)

    with pytest.raises(CredentialUnavailable) as caught:
        asyncio.run(scenario())
    error = caught.value
    assert error.code == "binding_required" and error.reason == "command_failed"
    assert NAME in error.message and "status 3" in error.message
    assert error.details == {"binding": NAME, "exit_status": 3}
    assert SECRET not in f"{error.message} {error.hint} {error.details}"


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("print('   ')", "printed nothing"),
        ("import sys; sys.stdout.buffer.write(b'\\xff\\xfe')", "not UTF-8"),
    ],
)
def test_an_unusable_output_is_refused(tmp_path: Path, code: str, why: str) -> None:
    """Empty (whitespace) or non-UTF-8 output is command_failed saying which."""

    async def scenario() -> None:
        source, binding = await source_for(tmp_path, [sys.executable, "-c", code])
        await source.secret(binding)

    with pytest.raises(CredentialUnavailable, match=why):
        asyncio.run(scenario())


def test_a_hanging_command_is_killed_at_the_timeout(tmp_path: Path) -> None:
    """A command that outlives the timeout (and its child) is killed: command_timeout."""
    sleeper = "import time; time.sleep(60)"
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {sleeper!r}])"

    async def scenario() -> None:
        source, binding = await source_for(tmp_path, [sys.executable, "-c", code], timeout_s=0.5)
        await source.secret(binding)

    with pytest.raises(CredentialUnavailable) as caught:
        asyncio.run(scenario())
    assert caught.value.reason == "command_timeout" and NAME in caught.value.message


def test_a_missing_program_is_named(tmp_path: Path) -> None:
    """A program that does not exist is command_failed naming it."""

    async def scenario() -> None:
        source, binding = await source_for(tmp_path, ["no-such-program-aileron-test"])
        await source.secret(binding)

    with pytest.raises(CredentialUnavailable, match="no-such-program-aileron-test"):
        asyncio.run(scenario())


def test_command_settings_parse_and_refuse_bad_values() -> None:
    """The stored value round-trips; an empty argv or a negative TTL is refused."""
    config = CommandConfig(argv=("gh", "auth", "token"), ttl_s=60)
    assert CommandConfig.parse(config.dumps().encode()) == config
    bad: list[object] = [{"argv": []}, {"argv": ["x"], "ttl_s": -1}, {"argv": "gh"}, []]
    for value in bad:
        with pytest.raises(SourceConfigError):
            CommandConfig.parse(json.dumps(value).encode())
