"""Building connector specs for executor tests, and running one operation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from aileron_cli.daemon.egress.executor import ExecutionResult, Executor
from aileron_core.connectors import ConnectorSpec, Operation, parse_connector_spec
from aileron_core.redaction import Secret

SECRET = "tok_S3cr3t+/=~value"
"""A credential with characters that percent-encoding and base64 both change."""


def make_spec(
    hosts: Sequence[str],
    *,
    kind: str = "bearer",
    name: str | None = None,
    method: str = "GET",
    path: str = "/echo",
    inputs: Sequence[Mapping[str, Any]] = (),
    scheme: str = "http",
) -> tuple[ConnectorSpec, Operation]:
    """A one-operation spec parsed from JSON, and its operation."""
    credential: dict[str, Any] = {"service": "echo", "kind": kind}
    if name is not None:
        credential["name"] = name
    document = {
        "schema_version": "aileron.connector.v1",
        "connector": {"fqn": "local://echo", "version": "1.0.0", "description": "Test upstream."},
        "credential": credential,
        "tools": [
            {
                "name": "echo",
                "description": "Echo.",
                "operations": [
                    {
                        "name": "call",
                        "summary": "Call the upstream.",
                        "method": method,
                        "path": path,
                        "hosts": list(hosts),
                        "inputs": list(inputs),
                        "scheme": scheme,
                    }
                ],
            }
        ],
    }
    spec = parse_connector_spec(json.dumps(document))
    return spec, spec.find_operation("echo", "call")


def execute(
    spec: ConnectorSpec,
    operation: Operation,
    args: Mapping[str, Any] | None = None,
    secret: Secret | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> ExecutionResult:
    """Run one operation on a fresh executor (closed afterwards), from synchronous code."""

    async def main() -> ExecutionResult:
        executor = Executor(transport=transport, **options)
        try:
            return await executor.run(spec, operation, args or {}, secret)
        finally:
            await executor.aclose()

    return asyncio.run(main())
