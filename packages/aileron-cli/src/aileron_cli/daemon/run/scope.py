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

from typing import TYPE_CHECKING, Any

import attrs

from aileron_cli.daemon.enclave import service as enclave_service
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.bindings import Binding
from aileron_core.actions import ActionManifest
from aileron_core.canonical import canonical_sha256
from aileron_core.connectors import ConnectorSpec, Operation
from aileron_core.convert import converter
from aileron_core.models import Approval, ApprovalStep

if TYPE_CHECKING:
    from aileron_cli.daemon.daemon import DaemonState

__all__ = ["PARTS", "Scope", "changes", "choose_binding", "origins", "scope"]

PARTS = ("action", "connectors", "operations", "bindings", "origins")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@attrs.frozen
class Scope:
    """What one run will touch: the steps as shown to a human, and the digest of each part."""

    steps: tuple[ApprovalStep, ...]
    parts: dict[str, str]

    @property
    def digest(self) -> str:
        """``plan_sha256``: the sha256 of the canonical JSON of the parts' digests."""
        return canonical_sha256(self.parts)


def choose_binding(state: DaemonState, spec: ConnectorSpec, override: str | None) -> Binding:
    """The binding that supplies ``spec``'s credential: ``override`` if the action names one,
    else the only ``*/<service>/default``. ``binding_required`` when there is none or several."""
    if override is not None:
        return state.bindings.get(override)
    service = spec.credential.service
    candidates = state.bindings.find_default(service)
    if not candidates:
        raise DaemonError(
            "binding_required",
            f"{spec.fqn} needs a credential for {service!r}"
            f" and no binding */{service}/default exists",
            hint=f"add one with `aileron binding add token/{service}/default`",
            details={"service": service},
        )
    if len(candidates) > 1:
        names = ", ".join(b.name for b in candidates)
        raise DaemonError(
            "binding_required",
            f"several bindings could serve {service!r} ({names})",
            hint="name one in the action's [[requires.connectors]] binding",
            details={"service": service},
        )
    return candidates[0]


def origins(operation: Operation) -> tuple[str, ...]:
    """``scheme://host:port`` of each declared host, the default port filled in, first first."""
    found: list[str] = []
    for entry in operation.hosts:
        host, colon, port = entry.rpartition(":")
        if not colon or entry.endswith("]"):
            host, port = entry, str(_DEFAULT_PORTS[operation.scheme])
        found.append(f"{operation.scheme}://{host.lower()}:{port}")
    return tuple(found)


def _binding_part(state: DaemonState, spec: ConnectorSpec, override: str | None) -> Any:
    try:
        binding = choose_binding(state, spec, override)
    except DaemonError as error:
        return {"unresolved": error.code, "override": override}
    escrow = enclave_service.escrow_for(state, binding.name)
    return {
        "name": binding.name,
        "created_at": binding.created_at.isoformat(),
        "escrow_id": escrow.escrow_id if escrow is not None else None,
    }


def scope(
    state: DaemonState,
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
        installed = state.connectors.get(fqn)
        found = installed.spec.find_operation(tool, op)
        binding = _binding_part(state, installed.spec, override)
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
