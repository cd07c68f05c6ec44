"""What a run will touch, and the digest an approval binds it by (SPEC §16, ADR 0016).

A run is an action manifest (or one connector operation run directly) and, for each
operation it performs, the installed connector spec, the binding whose credential it carries
and the origins its requests may go to. :func:`scope` reads all of that from what is
installed now; an approval stores the result at request time, and the decision recomputes it:
any difference makes the approval stale and nothing is sent.

The digest is computed per part (``PARTS``) so a stale approval can say what changed:

- ``action``: the parsed manifest (``null`` for a direct operation);
- ``connectors``: each step's connector FQN and spec content address (the store's sha256 of
  the canonical spec);
- ``operations``: each step's ``<fqn> <tool> <operation>``;
- ``bindings``: each step's binding name, creation time and escrow id (a binding revoked and
  added again, or escrowed, counts as a change); a step whose binding does not resolve records
  the reason, so a binding added later also counts;
- ``origins``: each step's ``scheme://host:port`` origins, the first being where the request
  goes.

``plan_sha256`` is the sha256 of the canonical JSON of the parts' digests.
"""

from __future__ import annotations

from typing import Any

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.run.credentials import CredentialResolver
from aileron_cli.daemon.store.approvals import Scope
from aileron_cli.daemon.store.connectors import ConnectorStore
from aileron_core.actions import ActionManifest
from aileron_core.canonical import canonical_sha256
from aileron_core.connectors import ConnectorSpec, Operation
from aileron_core.convert import converter
from aileron_core.models import Approval, ApprovalStep
from aileron_core.origins import declared_origin

__all__ = ["PARTS", "Scope", "changes", "origins", "scope"]

PARTS = ("action", "connectors", "operations", "bindings", "origins")


def origins(operation: Operation) -> tuple[str, ...]:
    """``scheme://host:port`` of each declared host, the default port filled in, first first."""
    found: list[str] = []
    for entry in operation.hosts:
        host, port = declared_origin(entry, operation.scheme)
        found.append(f"{operation.scheme}://{host}:{port}")
    return tuple(found)


def _binding_part(
    credentials: CredentialResolver, spec: ConnectorSpec, override: str | None
) -> Any:
    try:
        binding = credentials.choose(spec, override)
    except DaemonError as error:
        return {"unresolved": error.code, "override": override}
    return {
        "name": binding.name,
        "created_at": binding.created_at.isoformat(),
        "escrow_id": credentials.escrow_id(binding.name),
    }


def scope(
    store: ConnectorStore,
    credentials: CredentialResolver,
    manifest: ActionManifest | None,
    operation: tuple[ConnectorSpec, str, str] | None,
) -> Scope:
    """What running ``manifest`` (or the direct ``operation``) would touch, as installed now.

    Raises what looking the parts up raises (``connector_not_found``, ``unknown_operation``).
    """
    calls: list[tuple[str, str, str, str | None]] = []  # fqn, tool, op, binding override
    if manifest is None:
        assert operation is not None
        spec, tool, op = operation
        calls.append((spec.fqn, tool, op, None))
    else:
        for step in manifest.execute:
            requirement = manifest.requirement(step.connector)
            override = requirement.binding if requirement is not None else None
            calls.append((step.connector, step.tool, step.op, override))
    connectors: list[Any] = []
    operations: list[str] = []
    bindings: list[Any] = []
    targets: list[tuple[str, ...]] = []
    steps: list[ApprovalStep] = []
    for fqn, tool, op, override in calls:
        installed = store.get(fqn)
        found = installed.spec.find_operation(tool, op)
        binding = _binding_part(credentials, installed.spec, override)
        connectors.append({"fqn": fqn, "sha256": installed.digest})
        operations.append(f"{fqn} {tool} {op}")
        bindings.append(binding)
        targets.append(origins(found))
        steps.append(ApprovalStep(fqn, f"{tool} {op}", origins(found), binding.get("name")))
    action = converter.unstructure(manifest) if manifest is not None else None
    parts = {
        "action": canonical_sha256(action),
        "connectors": canonical_sha256(connectors),
        "operations": canonical_sha256(operations),
        "bindings": canonical_sha256(bindings),
        "origins": canonical_sha256([list(t) for t in targets]),
    }
    return Scope(tuple(steps), parts)


def changes(approval: Approval, now: Scope) -> list[str]:
    """The parts that differ between what ``approval`` was bound to and ``now`` (every part
    for an approval recorded before plans were bound)."""
    if approval.plan_sha256 is None:
        return list(PARTS)
    changed = [p for p in PARTS if approval.plan_parts.get(p) != now.parts[p]]
    if not changed and approval.plan_sha256 != now.digest:
        return list(PARTS)  # the parts were tampered with apart from the digest
    return changed
