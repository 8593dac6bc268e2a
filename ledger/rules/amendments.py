"""Who may amend which step: a control point kept as versioned data (issue 13 §3).

A policy file ``ledger/rulesets/amendment-roles.v<N>.json`` lists, per workflow step, the roles that
may sign an amendment of one of its values (``amend``) and the roles that may record an amendment
whose new value fails a hard rule, with a reason (``override``). A role allowed to override may
also amend. Every amendment names the policy it was checked against (``amendment-roles@1``), so the
verifier re-checks the amending role against the same content years later: like a rule set, a
published version never changes (the tests pin its digest).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ledger.rules.loading import _IDENT, _NAME, _VERSION, _Document, _packaged, _parse_json

__all__ = [
    "AMENDMENT_POLICY",
    "AmendmentPolicy",
    "load_amendment_policy",
    "load_amendment_policy_ref",
]

#: The policy new amendments are checked against.
AMENDMENT_POLICY = "amendment-roles@1"


@dataclass(frozen=True)
class AmendmentPolicy:
    policy_id: str
    version: str
    amend: Mapping[str, tuple[str, ...]] = field(hash=False)
    override: Mapping[str, tuple[str, ...]] = field(hash=False)
    digest: str = ""

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@{self.version}"

    def problem(self, step: str, role: str, *, overriding: bool) -> str | None:
        """Why `role` may not sign this amendment of `step` (None: it may).

        `overriding`: the amendment records an override of a failed hard rule.
        """
        if step not in self.amend:
            return f"{self.ref} names no amendment rule for step {step!r}"
        overriders = self.override[step]
        if overriding:
            if role not in overriders:
                allowed = " or ".join(overriders) or "nobody"
                return (
                    f"a hard-rule override on {step} is recorded by {allowed} ({self.ref}), "
                    f"not {role}"
                )
            return None
        amenders = (*self.amend[step], *overriders)
        if role not in amenders:
            allowed = " or ".join(amenders) or "nobody"
            return f"values of {step} are amended by {allowed} ({self.ref}), not {role}"
        return None


def _roles(doc: _Document, step: str, key: str, value: object) -> tuple[str, ...]:
    if not (
        isinstance(value, list)
        and all(isinstance(r, str) and _IDENT.fullmatch(r) for r in value)
        and len(set(value)) == len(value)
    ):
        raise doc.fail(f"steps.{step}.{key} must list distinct role names")
    return tuple(value)


def _policy_from_text(text: str, origin: str) -> AmendmentPolicy:
    doc, digest = _parse_json(text, origin)
    doc.keys(("policy_id", "version", "effective_from", "source", "steps"), ("notes",))
    doc.day("effective_from")
    doc.text("source")
    notes = doc.data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise doc.fail("notes must be a list of strings")
    steps = doc.data["steps"]
    if not isinstance(steps, dict) or not steps:
        raise doc.fail("steps must be a non-empty object")
    amend: dict[str, tuple[str, ...]] = {}
    override: dict[str, tuple[str, ...]] = {}
    for step, entry in steps.items():
        if not _IDENT.fullmatch(step) or not isinstance(entry, dict):
            raise doc.fail(f"steps.{step} must be an object keyed by a step name")
        child = _Document(entry, f"{origin}: steps.{step}")
        child.keys(("amend", "override"))
        amend[step] = _roles(doc, step, "amend", entry["amend"])
        override[step] = _roles(doc, step, "override", entry["override"])
    return AmendmentPolicy(
        policy_id=doc.text("policy_id", _NAME),
        version=doc.text("version", _VERSION),
        amend=MappingProxyType(amend),
        override=MappingProxyType(override),
        digest=digest,
    )


@functools.cache
def load_amendment_policy(name: str = "amendment-roles", version: str = "1") -> AmendmentPolicy:
    """Load a packaged amendment policy (cached: a published version never changes)."""
    resource, origin = _packaged(name, version)
    policy = _policy_from_text(resource.read_text(encoding="utf-8"), origin)
    if (policy.policy_id, policy.version) != (name, version):
        raise ValueError(f"{origin}: file declares {policy.ref}, expected {name}@{version}")
    return policy


def load_amendment_policy_ref(ref: str) -> AmendmentPolicy:
    """The packaged policy named by a stored reference such as ``amendment-roles@1``."""
    name, sep, version = ref.partition("@")
    if not sep:
        raise ValueError(f"amendment policy reference {ref!r} must look like name@version")
    return load_amendment_policy(name, version)
