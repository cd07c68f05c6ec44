"""``command``: a secret read from a command's output at use time (issue #22).

The vault holds the command (:class:`aileron_core.credential_sources.CommandConfig`: ``argv``
and ``ttl_s``), e.g. ``["gh", "auth", "token"]`` or ``["op", "read", "op://vault/item/f"]``.
When the binding is used the daemon runs it on the host as the daemon's user: no shell (argv
as stored), stdin closed (``/dev/null``: it cannot prompt), ten seconds at most, the daemon's
environment and working directory. Its standard output with surrounding whitespace removed is
the secret (the whole output, not the first line: a PEM or JSON secret spans lines; ``gh auth
token`` and ``op read`` end with one newline, which goes). The secret is reused for ``ttl_s``
seconds; an upstream 401 forgets it (:meth:`CommandSource.invalidate`), so the next use runs the
command again.

The output and the standard error are never logged, audited or put in an error: a command that
fails, times out or prints nothing is ``binding_required`` naming the binding and the exit
status only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable

import attrs

from aileron_cli.daemon.run.sources.stored import settings, unavailable
from aileron_cli.daemon.store.bindings import Binding
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.credential_sources import CommandConfig, SourceConfigError

__all__ = ["CommandSource"]

TIMEOUT_S = 10.0
MAX_OUTPUT_BYTES = 64 * 1024


@attrs.frozen
class _Read:
    settings: bytes = attrs.field(repr=False)
    secret: bytes = attrs.field(repr=False)
    good_until: float


class CommandSource:
    """Secrets of ``command`` bindings: their command's output, cached for its TTL."""

    name = "command"

    def __init__(
        self,
        vault: VaultService,
        *,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._vault = vault
        self._clock = clock
        self._timeout_s = timeout_s
        self._read: dict[str, _Read] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def secret(self, binding: Binding) -> bytes:
        """The command's output, from the cache while its TTL lasts, else from a fresh run."""
        raw = await settings(self._vault, binding)
        async with self._locks.setdefault(binding.name, asyncio.Lock()):
            read = self._read.get(binding.name)
            if read is not None and read.settings == raw and self._clock() < read.good_until:
                return read.secret
            try:
                config = CommandConfig.parse(raw)
            except SourceConfigError as error:
                raise unavailable(
                    binding, "invalid_source_config", f"binding {binding.name}: {error.message}"
                ) from None
            started = self._clock()
            secret = await self._run(binding, config)
            self._read[binding.name] = _Read(raw, secret, started + config.ttl_s)
            return secret

    def invalidate(self, binding: Binding) -> None:
        """The upstream refused the output: the next :meth:`secret` runs the command again."""
        self._read.pop(binding.name, None)

    async def _run(self, binding: Binding, config: CommandConfig) -> bytes:
        name = binding.name
        program = config.argv[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *config.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # no terminal to prompt on; killed as a group
            )
        except OSError as error:
            raise unavailable(
                binding,
                "command_failed",
                f"binding {name} could not start its command {program!r}"
                f" ({error.strerror or type(error).__name__})",
                hint=f"install it or add the binding again with the right command: `aileron"
                f" binding revoke {name}`",
            ) from None
        try:
            output = await asyncio.wait_for(_bounded_output(process), self._timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own children too
            await process.wait()
            raise unavailable(
                binding,
                "command_timeout",
                f"the command of binding {name} ({program!r}) did not finish within"
                f" {self._timeout_s:g} s",
                hint=f"run `{program}` yourself to see whether it waits for input",
            ) from None
        status = process.returncode
        secret = output.strip()
        why = _fault(status, secret)
        if why is not None:
            raise unavailable(
                binding,
                "command_failed",
                f"the command of binding {name} ({program!r}) {why}",
                hint=f"run `{program}` yourself to see why",
                exit_status=status,
            )
        return secret


async def _bounded_output(process: asyncio.subprocess.Process) -> bytes:
    """The command's output once it exits; reading stops past :data:`MAX_OUTPUT_BYTES` (a
    command that floods its output is killed then, not buffered until the timeout)."""
    assert process.stdout is not None
    output = bytearray()
    while chunk := await process.stdout.read(MAX_OUTPUT_BYTES):
        output += chunk
        if len(output) > MAX_OUTPUT_BYTES + 2:  # room for the newline(s) that strip() drops
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            break
    await process.wait()
    return bytes(output)


def _fault(status: int | None, secret: bytes) -> str | None:
    """Why a command's output cannot be the secret (never quoting it), ``None`` if it can."""
    if len(secret) > MAX_OUTPUT_BYTES:  # first: such a command was killed (status -9)
        return f"printed more than {MAX_OUTPUT_BYTES} bytes"
    if status != 0:
        return f"exited with status {status}"
    if not secret:
        return "printed nothing"
    try:
        secret.decode("utf-8")
    except UnicodeDecodeError:
        return "printed something that is not UTF-8 text"
    return None
