"""The control-point model: rules, their outcomes, a step's evaluation and a versioned rule set.

Evaluation inputs are explicit. `values` holds measured and computed numbers, with the unit in the
field name (`hb_g_per_l`); `context` holds facts that select rules: `sex` ("M"/"F"), `product`
(one of `PRODUCTS`) and the flags `repeat_donor_no_reaction`, `endurance_athlete` and
`special_matching_approved` (missing flags count as false).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType

from signing.errors import LedgerError

Number = int | float
Limit = Number | tuple[Number, Number]

STEPS = ("general_exam", "pre_donation_test", "eligibility", "collection")
#: Platelet apheresis products: one or two therapeutic doses, or one dose with plasma.
PLATELET_PRODUCTS = frozenset({"platelets_single", "platelets_double", "platelets_plasma"})
#: Products a context may name; "whole_blood" is not collected here but has an interval rule.
PRODUCTS = PLATELET_PRODUCTS | {"plasma", "whole_blood"}
CONTEXT_VALUES: Mapping[str, frozenset[str]] = MappingProxyType(
    {"sex": frozenset({"M", "F"}), "product": PRODUCTS}
)
_OPS = frozenset({"ge", "gt", "le", "lt", "between"})
_OP_TEXT = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "between": "in"}


class RuleKind(StrEnum):
    HARD = "hard"
    ALERT = "alert"


class Outcome(StrEnum):
    """Result of one applicable rule. Rules that do not apply are not recorded."""

    PASS = "pass"
    FAIL = "fail"  # a hard rule failed
    ALERT = "alert"  # a plausibility alert fired
    OVERRIDDEN = "overridden"  # a FAIL with an override reason
    ACKNOWLEDGED = "acknowledged"  # an ALERT acknowledged by staff


_RESOLUTIONS = {Outcome.FAIL: Outcome.OVERRIDDEN, Outcome.ALERT: Outcome.ACKNOWLEDGED}


@dataclass(frozen=True)
class Rule:
    """One control point. `between` means lo <= value < hi."""

    id: str
    kind: RuleKind
    step: str
    field: str
    op: str
    limit: Limit
    unit: str
    applies_to: Mapping[str, object] = dataclasses.field(default_factory=dict, hash=False)
    message_zh: str = ""
    message_en: str = ""
    clause: str = ""

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"rule {self.id}: unknown op {self.op!r}")
        if isinstance(self.limit, tuple) != (self.op == "between"):
            raise ValueError(f"rule {self.id}: only op 'between' takes a [lo, hi] limit")

    def applies(self, context: Mapping[str, object]) -> bool | None:
        """Whether the rule's conditions hold; None if `context` lacks a key needed to tell.

        A condition is a value or a tuple of accepted values. A missing flag (a condition on
        true/false) counts as false.
        """
        undecided = False
        for key, expected in self.applies_to.items():
            if isinstance(expected, bool):
                actual = context.get(key, False)
                if not isinstance(actual, bool):
                    raise ValueError(f"context {key!r} must be true or false, got {actual!r}")
            elif key not in context:
                undecided = True
                continue
            else:
                actual = context[key]
            if actual not in (expected if isinstance(expected, tuple) else (expected,)):
                return False
        return None if undecided else True

    def judge(self, value: Number) -> RuleOutcome:
        """This rule's outcome for `value`: PASS, or FAIL (hard rule) or ALERT (plausibility)."""
        if self.holds(value):
            outcome = Outcome.PASS
        else:
            outcome = Outcome.FAIL if self.kind is RuleKind.HARD else Outcome.ALERT
        return RuleOutcome(self.id, value, self.limit, self.op, outcome)

    def holds(self, value: Number) -> bool:
        """Whether `value` is within the limit."""
        if isinstance(self.limit, tuple):
            low, high = self.limit
            return low <= value < high
        return {
            "ge": value >= self.limit,
            "gt": value > self.limit,
            "le": value <= self.limit,
            "lt": value < self.limit,
        }[self.op]


@dataclass(frozen=True)
class RuleOutcome:
    rule_id: str
    value: Number
    limit: Limit
    op: str
    outcome: Outcome

    def to_json(self) -> dict[str, object]:
        """JSON-native form, as carried inside hashed and signed event bodies."""
        limit = list(self.limit) if isinstance(self.limit, tuple) else self.limit
        return {
            "rule_id": self.rule_id,
            "value": self.value,
            "limit": limit,
            "op": self.op,
            "outcome": self.outcome.value,
        }

    def describe(self) -> str:
        """One line: id, outcome, value and limit (a pass holds the limit, the others not)."""
        limit = (
            f"[{self.limit[0]}, {self.limit[1]})" if isinstance(self.limit, tuple) else self.limit
        )
        relation = _OP_TEXT[self.op] if self.outcome is Outcome.PASS else f"not {_OP_TEXT[self.op]}"
        return f"{self.rule_id} ({self.outcome.value}: {self.value} {relation} {limit})"


class RuleViolation(LedgerError):
    """A step is blocked by failed hard rules or unacknowledged alerts."""

    def __init__(self, blocking: Sequence[RuleOutcome]) -> None:
        self.blocking = tuple(blocking)
        super().__init__("blocked by " + ", ".join(o.describe() for o in self.blocking))


@dataclass(frozen=True)
class Evaluation:
    """Outcomes of the rules of one step; `not_evaluated` lists applicable rules with no value."""

    outcomes: tuple[RuleOutcome, ...]
    not_evaluated: tuple[str, ...] = ()
    rule_set_ref: str = ""

    @property
    def failures(self) -> tuple[RuleOutcome, ...]:
        """Hard rules that failed and are not overridden."""
        return tuple(o for o in self.outcomes if o.outcome is Outcome.FAIL)

    @property
    def alerts(self) -> tuple[RuleOutcome, ...]:
        """Alerts not yet acknowledged."""
        return tuple(o for o in self.outcomes if o.outcome is Outcome.ALERT)

    def blocking(self) -> tuple[RuleOutcome, ...]:
        return self.failures + self.alerts

    def raise_if_blocked(self) -> None:
        if blocking := self.blocking():
            raise RuleViolation(blocking)

    def resolve(
        self, overrides: Mapping[str, str], acknowledgements: Collection[str] = ()
    ) -> Evaluation:
        """Mark overridden failures (rule id -> reason) and acknowledged alerts.

        Ids this evaluation does not contain are ignored: an override given at the eligibility
        step may concern a failure recorded at an earlier step. Raises ValueError for a blank
        reason, or for an id of this evaluation that did not fail (override) or alert
        (acknowledgement): overriding a pass or acknowledging a hard failure is a mistake.
        """
        by_id = {o.rule_id: o for o in self.outcomes}
        for rule_id, reason in overrides.items():
            if not reason.strip():
                raise ValueError(f"override of {rule_id} needs a reason")
            self._check_resolvable(by_id.get(rule_id), Outcome.FAIL, "override")
        for rule_id in acknowledgements:
            self._check_resolvable(by_id.get(rule_id), Outcome.ALERT, "acknowledgement")
        resolved = tuple(
            dataclasses.replace(o, outcome=_RESOLUTIONS[o.outcome])
            if (o.outcome is Outcome.FAIL and o.rule_id in overrides)
            or (o.outcome is Outcome.ALERT and o.rule_id in acknowledgements)
            else o
            for o in self.outcomes
        )
        return Evaluation(resolved, self.not_evaluated, self.rule_set_ref)

    @staticmethod
    def _check_resolvable(outcome: RuleOutcome | None, fired: Outcome, what: str) -> None:
        if outcome is not None and outcome.outcome not in (fired, _RESOLUTIONS[fired]):
            raise ValueError(
                f"{what} for {outcome.rule_id}, which is {outcome.outcome.value}, not {fired.value}"
            )


@dataclass(frozen=True)
class RuleSet:
    rule_set_id: str
    version: str
    rules: tuple[Rule, ...]
    effective_from: date | None = None
    source: str = ""
    digest: str = ""  # SHA-256 of the sorted-key compact JSON of the file's content

    def __post_init__(self) -> None:
        ids = [rule.id for rule in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError(f"rule set {self.ref}: duplicate rule ids")

    @property
    def ref(self) -> str:
        """The reference stored in events, e.g. "gb18467-2011@1"."""
        return f"{self.rule_set_id}@{self.version}"

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def for_step(self, step: str) -> tuple[Rule, ...]:
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")
        return tuple(rule for rule in self.rules if rule.step == step)

    def evaluate(
        self,
        step: str,
        values: Mapping[str, Number | None],
        context: Mapping[str, object] = MappingProxyType({}),
    ) -> Evaluation:
        """Evaluate the rules of `step` that apply in `context`.

        A rule whose field is missing or None is not evaluated and is listed in
        `Evaluation.not_evaluated` (also when the context cannot tell whether it applies).
        Raises ValueError for a non-numeric value, a bad context, or a context lacking a key
        needed for a rule whose value is present.
        """
        for key, allowed in CONTEXT_VALUES.items():
            if key in context and context[key] not in allowed:
                raise ValueError(
                    f"context {key}={context[key]!r}; expected one of {sorted(allowed)}"
                )
        outcomes: list[RuleOutcome] = []
        missing: list[str] = []
        for rule in self.for_step(step):
            applies = rule.applies(context)
            value = values.get(rule.field)
            if applies is False:
                continue
            if value is None:
                missing.append(rule.id)
                continue
            if applies is None:
                needed = sorted(k for k in rule.applies_to if k not in context)
                raise ValueError(f"rule {rule.id} needs context {', '.join(map(repr, needed))}")
            outcomes.append(rule.judge(_checked_number(rule.field, value)))
        return Evaluation(tuple(outcomes), tuple(missing), self.ref)


def _checked_number(name: str, value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"value {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"value {name} must be finite, got {value!r}")
    return value
