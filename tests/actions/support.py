"""Helpers for action tests (imported as ``actions.support``)."""

from __future__ import annotations

import json
from typing import Any

from aileron_cli.examples import ACTIONS, CONNECTORS

SECRET = "sk-echo-SECRET-4f1a9c"


def echo_spec(host: str) -> dict[str, Any]:
    """The shipped local://echo spec, pointed at ``host``."""
    text = (CONNECTORS / "local-echo.json").read_text().replace("127.0.0.1:8765", host)
    spec: dict[str, Any] = json.loads(text)
    return spec


def manifest(name: str) -> str:
    return (ACTIONS / f"{name}.md").read_text()
