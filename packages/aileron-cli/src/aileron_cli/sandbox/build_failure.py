"""What a failed sandbox image build says about itself: the step that failed and why.

The shipped Containerfile starts each ``RUN`` with ``: "aileron step: <name>"``; podman prints
the instruction of each step (``STEP 4/7: RUN : "aileron step: agent install"; …``) and
docker's plain progress prints it too (``#8 [4/5] RUN : "aileron step: …``), so the last step
announced before the failure is the one that failed. ``FROM`` is the base image's step. npm
reports why it failed as ``npm ERR! code <CODE>`` (npm ≤ 9) or ``npm error code <CODE>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

__all__ = ["BuildFailure", "diagnose"]

INSTALL_STEP = "agent install"
PACKAGES_STEP = "system packages"
BASE_STEP = "base image"

_STEP = re.compile(r'aileron step: ([a-z][a-z ]*)\\?"')
_FAILED = re.compile(r"building at step|did not complete successfully", re.IGNORECASE)
_FROM = re.compile(r"(?:STEP \d+/\d+: |\[[^\]]*\d+/\d+\] )FROM ", re.IGNORECASE)
_ANY_STEP = re.compile(r"STEP \d+/\d+: |#\d+ \[[^\]]*\d+/\d+\] ")
_NPM_CODE = re.compile(r"npm (?:ERR!|error) code (\S+)")

# npm's codes for a certificate it does not trust: a TLS-intercepting proxy's CA is missing.
_CERT_CODES = frozenset(
    {
        "SELF_SIGNED_CERT_IN_CHAIN",
        "DEPTH_ZERO_SELF_SIGNED_CERT",
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        "UNABLE_TO_GET_ISSUER_CERT",
        "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        "CERT_UNTRUSTED",
    }
)
# npm's codes for a registry it cannot reach.
_NETWORK_CODES = frozenset(
    {"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH"}
)
# npm's codes for a package or version that is not there.
_MISSING_CODES = frozenset({"ETARGET", "E404", "ENOVERSIONS"})


@attrs.frozen
class BuildFailure:
    """The failed step (``None`` when the output names none) and npm's error code, if any."""

    step: str | None
    npm_code: str | None = None

    @property
    def summary(self) -> str:
        """``the agent install step failed (npm: SELF_SIGNED_CERT_IN_CHAIN)``, or ``""``."""
        if self.step is None:
            return ""
        why = f" (npm: {self.npm_code})" if self.npm_code else ""
        return f"the {self.step} step failed{why}"

    def hint(self, *, base: str, base_var: str) -> str:
        """What to do next, for this step and code."""
        code = self.npm_code
        if code in _CERT_CODES:
            return (
                "pass --ca-cert with your proxy's CA (a PEM file; repeat it for several) so the"
                " build trusts it"
            )
        if code in _NETWORK_CODES:
            return (
                "the build cannot reach the npm registry: set HTTPS_PROXY (and NO_PROXY) for"
                " the build, or pick a network with --build-network"
            )
        if code in _MISSING_CODES:
            return "check the agent's version pin in [sandbox.pins] of config.toml"
        if self.step == INSTALL_STEP:
            return "read the install step's output above; --refresh installs the agent anew"
        if self.step == PACKAGES_STEP:
            return (
                "installing curl/ca-certificates with apt-get failed: use a base image that has"
                " curl or wget (and ca-certificates), or give the build a proxy or network"
            )
        return (
            "read the build output above; set the base with --base-image or"
            f" {base_var} if {base} cannot be pulled here"
        )


def diagnose(lines: Iterable[str]) -> BuildFailure:
    """The step that failed, from the build's output lines in order: the step an error line
    names (podman: ``building at STEP "RUN : "aileron step: …``; docker: ``process "/bin/sh -c
    : \\"aileron step: …`` ``did not complete successfully``), else the last step announced."""
    step: str | None = None
    failed: str | None = None
    npm_code: str | None = None
    for line in lines:
        named = _STEP.search(line)
        if _FAILED.search(line):
            if named is not None and failed is None:
                failed = named.group(1).strip()
        elif named is not None and _ANY_STEP.search(line):
            step = named.group(1).strip()
        elif _FROM.search(line):
            step = BASE_STEP
        elif _ANY_STEP.search(line):
            step = None
        code = _NPM_CODE.search(line)
        if code is not None and npm_code is None:
            npm_code = code.group(1)
    return BuildFailure(step=failed or step, npm_code=npm_code)
