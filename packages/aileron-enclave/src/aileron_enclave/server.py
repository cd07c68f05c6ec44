"""Running the enclave: the data directory, the lock, the socket, uvicorn with TLS.

Start-up: take ``serve.lock`` (a second server on the same data directory refuses), load or
create the identity (keys and certificate), open the escrow store (a tampered store stops the
start with ``escrow_store_corrupt``), bind the listen address, then serve HTTPS only. Once
serving, ``listen.json`` (0600) in the data directory holds ``{url, pid, fingerprint,
measurement, provider, started_at}`` — with ``--listen 127.0.0.1:0`` that is how a script
learns the port the system chose — and the same facts are printed on standard output. A clean
stop removes ``listen.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
from datetime import UTC, datetime
from typing import TextIO

import uvicorn

from aileron_core.fileio import atomic_write, take_lock
from aileron_enclave.app import Enclave, create_app
from aileron_enclave.datadir import DataDir, Identity
from aileron_enclave.errors import EnclaveError
from aileron_enclave.measurement import measure
from aileron_enclave.store import EscrowStore

__all__ = ["DEFAULT_LISTEN", "parse_listen", "serve"]

DEFAULT_LISTEN = "127.0.0.1:9443"
log = logging.getLogger("aileron.enclave")


class ServeError(EnclaveError):
    """The enclave cannot start: the address, the lock."""

    code = "cannot_serve"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (port 0 lets the system choose); ``ServeError`` if malformed."""
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ServeError(f"--listen {text!r} is not HOST:PORT", hint="e.g. --listen 127.0.0.1:9443")
    return host, int(port)


def _take_lock(data_dir: DataDir) -> int:
    fd = take_lock(data_dir.lock)
    if fd is None:
        raise ServeError(
            f"another aileron-enclave is already serving {data_dir.path}",
            hint="stop it first, or use another --data-dir",
        )
    return fd


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {error.strerror or error}",
            hint="pick another --listen address (port 0 lets the system choose)",
        ) from None
    return sock


def serve(
    data_dir: DataDir, listen: tuple[str, int], *, provider: str, out: TextIO = sys.stdout
) -> int:
    """Serve until told to stop (SIGTERM/SIGINT); returns the exit code."""
    data_dir.ensure()
    lock_fd = _take_lock(data_dir)
    try:
        identity = Identity.load_or_create(data_dir)
        store = EscrowStore.open(data_dir, identity.storage_key)
        enclave = Enclave(data_dir, identity, store, provider=provider, measurement=measure())
        enclave.codes.current()  # the first client's registration code exists from now on
        sock = _bind(*listen)
    except BaseException:
        os.close(lock_fd)
        raise
    host, port = sock.getsockname()[:2]
    url = f"https://{host}:{port}"
    info = {
        "url": url,
        "pid": os.getpid(),
        "fingerprint": identity.fingerprint,
        "measurement": enclave.measurement,
        "provider": provider,
        "started_at": datetime.now(UTC).isoformat(),
    }

    def on_ready() -> None:
        atomic_write(data_dir.listen, json.dumps(info, indent=2).encode() + b"\n")
        print(
            f"aileron-enclave listening on {url}\n"
            f"  provider:    {provider} (debug: no hardware isolation)\n"
            f"  fingerprint: {identity.fingerprint}\n"
            f"  measurement: {enclave.measurement}\n"
            f"  escrows:     {store.summary()['escrows']} for {store.summary()['clients']}"
            " client(s)\n"
            "  register a daemon with the one-time code that"
            f" `aileron-enclave registration-code --data-dir {data_dir.path}` prints:\n"
            f"  aileron enclave attach {url} --fingerprint {identity.fingerprint}",
            file=out,
            flush=True,
        )

    def on_stopped() -> None:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(data_dir.listen.read_text()).get("pid") == os.getpid():
                data_dir.listen.unlink()

    app = create_app(enclave, on_ready=on_ready, on_stopped=on_stopped)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            ssl_keyfile=str(data_dir.tls_key),
            ssl_certfile=str(data_dir.tls_cert),
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            server_header=False,
        )
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        os.close(lock_fd)
    return 0
