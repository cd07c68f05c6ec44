"""Nothing of Aileron's leaves through the gateway, and no path leaves the provider's base URL.

- **Aileron tokens.** A value *holds an Aileron token* when it holds the shape the daemon mints
  (:func:`aileron_core.ids.new_token`: ``ais_`` for a session, ``aim_`` for the master token,
  then 43 URL-safe base64 characters) — whether the token is live, ended or another daemon's:
  none of them is anything a provider should see. The shape is looked for in the value as it
  came, in its percent-decodings (repeated: ``%2561`` is ``%61`` is ``a``) and in the base64
  (standard or URL-safe, at any alignment) of each, which covers HTTP basic credentials
  (``base64("user:token")``). The gateway drops every forwarded header that holds one
  (:func:`aileron_cli.daemon.gateway.proxy.request_headers`) and every query parameter whose
  name or value holds one (:func:`clean_query`); a path that holds one is refused.
- **Paths.** The tail after ``/v1/gateway/NAME`` is appended to the provider's base URL as it
  came, so it must not be able to leave the base URL's path on any server that decodes or
  normalises it: a dot segment (``.``/``..``, also percent-encoded in any case), a backslash
  or ``;`` (raw or encoded: some servers treat them as a separator or a parameter start), an
  encoded slash, a control byte, a double encoding (``%25``), a malformed escape or any
  character outside RFC 3986's path characters refuses the request (422 ``invalid_request``,
  audited with reason ``bad_path``) before the base URL is applied. Nothing is normalised: a
  path that passes is forwarded byte for byte.

Not covered (ADR 0030): request bodies are forwarded unread; a token the agent transforms in
another way (hex, base32, split, reversed) is not recognised — an agent holds its own session
token and can always send it somewhere, so this guards against accidents and careless tools,
not against a hostile agent exfiltrating its own token.
"""

from __future__ import annotations

import binascii
import re
from urllib.parse import unquote_to_bytes

from aileron_cli.daemon.gateway.auth import GatewayRefused

__all__ = ["TOKEN_SHAPE", "audit_path", "clean_query", "token_in", "upstream_tail"]

TOKEN_SHAPE = re.compile(rb"ai[sm]_[A-Za-z0-9_-]{43}")
"""What :func:`aileron_core.ids.new_token` mints for ``ais`` and ``aim``."""
TOKEN_LENGTH = 47
"""A token's length: no shorter value can hold one, in any encoding."""

_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{62,}")
"""A run long enough to hold the base64 of a token (47 bytes: at least 63 characters)."""

_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_MAX_DECODINGS = 4
"""Percent-decodings tried in turn (each may reveal another layer). A token encoded more
times than that is not recognised: a provider decodes a value once."""

_PATH_CHARS = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,=:@/%]*")
"""RFC 3986 ``pchar`` and ``/``, without ``;`` (a parameter start on some servers)."""

_ESCAPE = re.compile(rb"%(.{0,2})", re.DOTALL)
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _base64_holds_token(text: bytes) -> bool:
    for run in _BASE64_RUN.findall(text):
        run = run.translate(_TO_STANDARD)
        for start in range(4):
            part = run[start:]
            part = part[: len(part) - len(part) % 4] if len(part) % 4 == 1 else part
            part += b"=" * (-len(part) % 4)
            try:
                decoded = binascii.a2b_base64(part)
            except binascii.Error:
                continue
            if TOKEN_SHAPE.search(decoded):
                return True
    return False


def token_in(value: bytes) -> bool:
    """Whether ``value`` holds an Aileron-token-shaped string: as it is, percent-decoded (once
    or repeatedly) or base64-encoded (of the token, or of ``…:token`` as in HTTP basic)."""
    if len(value) < TOKEN_LENGTH:  # every encoding only lengthens a token
        return False
    layer = value
    for _ in range(_MAX_DECODINGS + 1):
        if TOKEN_SHAPE.search(layer) or _base64_holds_token(layer):
            return True
        if b"%" not in layer:
            return False
        decoded = unquote_to_bytes(layer)
        if decoded == layer:
            return False
        layer = decoded
    return False


def clean_query(query: bytes) -> bytes:
    """``query`` without the parameters whose name or value holds an Aileron token (the rest
    kept byte for byte, in order)."""
    if not query:
        return query
    parameters = query.split(b"&")
    kept = [parameter for parameter in parameters if not token_in(parameter)]
    return query if len(kept) == len(parameters) else b"&".join(kept)


def _refuse(problem: str) -> GatewayRefused:
    return GatewayRefused(
        "invalid_request",
        f"the gateway does not forward this path: {problem}",
        reason="bad_path",
        hint="send the provider's API path as the SDK builds it",
        details={"fields": [{"location": ["path", "path"], "problem": problem}]},
    )


def _path_problem(raw_tail: bytes) -> str | None:
    if not raw_tail.startswith(b"/"):
        return "it does not start with `/`"
    if not _PATH_CHARS.fullmatch(raw_tail):
        if b"\\" in raw_tail:
            return "a backslash"
        if b";" in raw_tail:
            return "a `;`"
        if any(byte < 0x20 or byte == 0x7F for byte in raw_tail):
            return "a control character"
        return "a character outside RFC 3986 path characters"
    for escape in _ESCAPE.findall(raw_tail) if b"%" in raw_tail else ():
        if len(escape) < 2 or not set(escape) <= _HEX:
            return "a malformed percent escape"
        byte = int(escape, 16)
        if byte == ord("%"):
            return "a double percent-encoding (`%25`)"
        if byte in (ord("/"), ord("\\")):
            return "an encoded slash or backslash"
        if byte == ord(";"):
            return "an encoded `;`"
        if byte < 0x20 or byte == 0x7F:
            return "an encoded control character"
    segments = raw_tail.split(b"/") if b"." in raw_tail or b"%" in raw_tail else []
    if any(unquote_to_bytes(segment) in (b".", b"..") for segment in segments):
        return "a `.` or `..` segment"
    if token_in(raw_tail):
        return "an Aileron token"
    return None


def upstream_tail(raw_tail: bytes) -> str:
    """The path to append to the provider's base URL for ``raw_tail`` (the raw path after
    ``/v1/gateway/NAME``, starting with ``/``): the tail itself, unchanged, or
    :class:`GatewayRefused` (422 ``invalid_request``, reason ``bad_path``) for a tail that
    could leave the base URL's path or carries an Aileron token (see the module docstring)."""
    problem = _path_problem(raw_tail)
    if problem is not None:
        raise _refuse(problem)
    return raw_tail.decode("ascii")


def audit_path(raw_tail: bytes) -> str:
    """``raw_tail`` as the audit log may show it: as it came, with any Aileron token masked
    (a path holding one in an encoded form is not shown at all)."""
    masked = TOKEN_SHAPE.sub(b"[aileron-token]", raw_tail)
    if token_in(masked):
        return "[a path holding an Aileron token]"
    return masked.decode("latin-1")
