"""A fake Slack Web API: ``chat.postMessage`` and ``conversations.history`` on slack.com.

``SlackApi`` is a handler for ``tls_upstreams.TlsUpstream``. Like Slack, it answers HTTP 200
with ``{"ok": false, "error": CODE}`` when a call fails: ``not_authed`` without a Bearer token,
``invalid_auth`` for a token other than the one it was given, ``channel_not_found`` for an
unknown channel, ``no_text`` for a message without text, ``unknown_method`` (404) for other
paths. Every token it was sent is kept in ``tokens``; channels are created with ``channel``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.tls_upstreams import Request, Response, bearer_token


def _json(value: object, status: int = 200) -> Response:
    body = json.dumps(value).encode()
    return Response(status, [("Content-Type", "application/json; charset=utf-8")], body)


@dataclass
class SlackApi:
    """The fake API (see the module)."""

    token: str
    tokens: list[str] = field(default_factory=list)
    """Every Bearer token a request carried, right or wrong."""
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Messages per channel id, newest first."""
    names: dict[str, str] = field(default_factory=dict)
    """Channel id per ``#name``."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clock: int = 1_700_000_000

    def channel(self, channel_id: str, name: str) -> None:
        """A new channel ``channel_id`` called ``#name``."""
        self.channels[channel_id] = []
        self.names[f"#{name}"] = channel_id

    def post(self, channel_id: str, user: str, text: str) -> dict[str, Any]:
        """A message in ``channel_id``, with the next ts."""
        self._clock += 1
        message = {"type": "message", "user": user, "text": text, "ts": f"{self._clock}.000100"}
        self.channels[channel_id].insert(0, message)
        return message

    def __call__(self, request: Request) -> Response:
        given = bearer_token(request.header("Authorization"))
        with self._lock:
            if given is not None:
                self.tokens.append(given)
            if given is None:
                return _json({"ok": False, "error": "not_authed"})
            if given != self.token:
                return _json({"ok": False, "error": "invalid_auth"})
            return self._route(request)

    def _route(self, request: Request) -> Response:
        url = urlsplit(request.path)
        if url.path == "/api/chat.postMessage" and request.method == "POST":
            body = json.loads(request.body or b"{}")
            channel = self.names.get(body.get("channel", ""), body.get("channel", ""))
            if channel not in self.channels:
                return _json({"ok": False, "error": "channel_not_found"})
            if not body.get("text"):
                return _json({"ok": False, "error": "no_text"})
            message = self.post(channel, "U0BOT", body["text"])
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
            return _json({"ok": True, "channel": channel, "ts": message["ts"], "message": message})
        if url.path == "/api/conversations.history" and request.method == "GET":
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            messages = self.channels.get(query.get("channel", ""))
            if messages is None:
                return _json({"ok": False, "error": "channel_not_found"})
            limit = int(query.get("limit", "100"))
            return _json(
                {
                    "ok": True,
                    "messages": messages[:limit],
                    "has_more": len(messages) > limit,
                    "response_metadata": {"next_cursor": ""},
                }
            )
        return _json({"ok": False, "error": "unknown_method"}, status=404)
