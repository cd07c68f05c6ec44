"""``/v1/providers``: the gateway's providers (SPEC §10) — what ``aileron launch --provider``
chooses from."""

from __future__ import annotations

from typing import Annotated, Any

import attrs
from fastapi import APIRouter, Depends

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES
from aileron_cli.daemon.gateway.config import ModelPolicy, ModelRule
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.schemas import ProviderOut

router = APIRouter(prefix="/providers", tags=["gateway"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]


@router.get("", response_model=list[ProviderOut])
async def list_providers(
    gateway: deps.Gateway, keys: deps.ProviderKeysDep, _: Admin
) -> list[ProviderOut]:
    """The gateway's providers by name: built-in and configured, each with whether the
    binding holding its key exists (its key is never shown)."""
    providers = gateway.config.providers
    return [
        ProviderOut(
            name=name,
            kind=provider.kind,
            base_url=provider.base_url,
            binding=provider.binding,
            bound=keys.binding(provider) is not None,
            models=_models(provider.models),
            limits={k: v for k, v in attrs.asdict(provider.limits).items() if v is not None},
        )
        for name, provider in sorted(providers.items())
    ]


def _rule(rule: ModelRule) -> dict[str, Any]:
    return {"allow": list(rule.allow) if rule.allow is not None else None, "deny": list(rule.deny)}


def _models(policy: ModelPolicy) -> dict[str, Any]:
    return {**_rule(policy.rule), "agents": {a: _rule(r) for a, r in policy.agents.items()}}
