"""The control points of one recorded event, re-checked from the event alone.

``recheck_event`` is what ``ledger verify`` runs on every event that names a rule set: each recorded
outcome is re-derived by ``ledger.rules.derive_outcomes`` (the function the write path records it
with) on the event's own value, and an amendment's signer must hold a role the amendment policy
it names allows for the step (and for an override, one allowed to override), with a reason per
overridden rule.
"""

from __future__ import annotations

from typing import Any

from ledger.donation import Donation
from ledger.events import LedgerAggregate
from ledger.rules import Outcome, RuleSet, recheck
from ledger.rules.amendments import load_amendment_policy_ref

__all__ = ["recheck_event"]


def recheck_event(rule_set: RuleSet, event: LedgerAggregate.Event, step: str | None) -> list[str]:
    """Problems with `event`'s recorded control points (empty: consistent).

    `step`: the workflow step whose rules the event's type answers to (None: any step; an
    amendment answers to the step it amends).
    """
    problems: list[str] = []
    values: dict[str, Any]
    if isinstance(event, Donation.RecordAmended):
        step = event.step
        values = {event.field: event.new_value}
        problems.extend(_amendment_problems(event))
    else:
        values = {name: value for name, value in vars(event).items() if not name.startswith("_")}
    mismatches = recheck(rule_set, step or "", values, None, event.rule_outcomes)
    problems.extend(f"rule outcomes do not match the rule set: {line}" for line in mismatches)
    return problems


def _amendment_problems(event: Donation.RecordAmended) -> list[str]:
    overridden = {
        str(o.get("rule_id")) for o in event.rule_outcomes if o.get("outcome") == Outcome.OVERRIDDEN
    }
    problems = []
    if event.amendment_policy:
        try:
            policy = load_amendment_policy_ref(event.amendment_policy)
        except ValueError as exc:
            return [f"unknown amendment policy {event.amendment_policy}: {exc}"]
        problem = policy.problem(event.step, event.actor_role, overriding=bool(overridden))
        if problem is not None:
            problems.append(f"amendment not allowed: {problem}")
    elif overridden:
        problems.append("an amendment overrides a hard rule without naming its amendment policy")
    if set(event.overrides) != overridden:
        problems.append(
            f"amendment overrides {sorted(event.overrides)} are not its overridden outcomes "
            f"{sorted(overridden)}"
        )
    if any(not str(reason).strip() for reason in event.overrides.values()):
        problems.append("an amendment overrides a hard rule without a reason")
    return problems
