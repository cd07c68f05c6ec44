"""What the gateway's traffic used and cost, summed from its ``gateway.request`` audit records.

The audit log is the only record of usage: each forwarded request's record carries its
``provider``, ``model``, ``agent``, ``usage`` (``{"input", "output", "cached"}`` read from the
provider's answer, or null when the answer reported none) and ``cost`` (from the price table,
or null when no price matched). :func:`summarize` groups them by one of :data:`GROUPINGS`.

A record without usage counts as a request of 0 tokens and as *unreported*. A record with usage
but no cost counts as *unpriced*. A group's cost is the sum of its priced records' costs, or
``None`` when none of its records was priced; a group priced in part says how many of its
requests were unpriced, so that a partial sum is never mistaken for the whole.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

import attrs

from aileron_core.audit import AuditRecord

RECORD_TYPE = "gateway.request"

Grouping = Literal["model", "agent", "session", "provider"]
GROUPINGS: tuple[Grouping, ...] = get_args(Grouping)

NO_KEY = "(none)"
"""The key of the records that lack the grouping's field (a request without a model)."""


def _tokens(value: Any) -> int:
    # The daemon wrote these; anything but a count (a bool, a negative) counts as nothing.
    return value if type(value) is int and value >= 0 else 0


def _cost(value: Any) -> float | None:
    if type(value) in (int, float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


@attrs.define
class Tally:
    """The sums of one group (or of all records)."""

    requests: int = 0
    input: int = 0
    output: int = 0
    cached: int = 0
    unpriced_requests: int = 0
    unreported_requests: int = 0
    costs: list[float] = attrs.field(factory=list)

    @property
    def tokens(self) -> int:
        return self.input + self.output

    @property
    def cost(self) -> float | None:
        """The priced records' costs summed (exactly rounded), ``None`` when none was priced."""
        return math.fsum(self.costs) if self.costs else None

    def count(self, payload: Mapping[str, Any]) -> None:
        """Add one ``gateway.request`` record's payload."""
        self.requests += 1
        usage = payload.get("usage")
        if not isinstance(usage, Mapping):
            self.unreported_requests += 1
        else:
            self.input += _tokens(usage.get("input"))
            self.output += _tokens(usage.get("output"))
            self.cached += _tokens(usage.get("cached"))
        cost = _cost(payload.get("cost"))
        if cost is not None:
            self.costs.append(cost)
        elif isinstance(usage, Mapping):
            self.unpriced_requests += 1

    def as_record(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "input": self.input,
            "output": self.output,
            "cached": self.cached,
            "cost": self.cost,
            "unpriced_requests": self.unpriced_requests,
            "unreported_requests": self.unreported_requests,
        }


@attrs.frozen
class UsageReport:
    """The groups, most expensive first (then most tokens, then by key), and their total."""

    by: Grouping
    groups: list[tuple[str, Tally]]
    total: Tally


def key_of(record: AuditRecord, by: Grouping) -> str:
    """The group ``record`` belongs to under ``by``: :data:`NO_KEY` when it has none."""
    value = record.session_id if by == "session" else record.payload.get(by)
    if value is None or value == "":
        return NO_KEY
    return str(value)


def _order(item: tuple[str, Tally]) -> tuple[bool, float, int, str]:
    key, tally = item
    cost = tally.cost
    return (cost is None, -(cost or 0.0), -tally.tokens, key)


def summarize(records: Iterable[AuditRecord], by: Grouping) -> UsageReport:
    """Sum the ``gateway.request`` records among ``records`` by ``by``."""
    groups: dict[str, Tally] = {}
    total = Tally()
    for record in records:
        if record.type != RECORD_TYPE:
            continue
        key = key_of(record, by)
        tally = groups.get(key)
        if tally is None:
            tally = groups[key] = Tally()
        tally.count(record.payload)
        total.count(record.payload)
    return UsageReport(by=by, groups=sorted(groups.items(), key=_order), total=total)
