"""Deriving a step's rule outcomes and re-checking recorded ones: one derivation for both.

`derive_values` computes age, pulse pressure, intervals and yearly totals from raw inputs;
`derive_outcomes` evaluates and resolves a step's rules (the write path records its result);
`recheck` compares recorded outcomes with what `derive_outcomes` gives (the verifier's check).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date
from types import MappingProxyType

from ledger.identity import age_on
from ledger.rules.model import (
    PLATELET_PRODUCTS,
    STEPS,
    Evaluation,
    Number,
    Outcome,
    RuleOutcome,
    RuleSet,
    _checked_number,
)

_DATE_INPUTS = frozenset(
    {
        "assessment_date",
        "birth_date",
        "last_platelet_donation_date",
        "last_whole_blood_donation_date",
    }
)


def derive_values(
    step: str, raw: Mapping[str, object], context: Mapping[str, object] = MappingProxyType({})
) -> dict[str, Number | None]:
    """Numbers for `RuleSet.evaluate`: the numeric entries of `raw` plus derived fields.

    `raw` holds numbers (or None) and these dates: `assessment_date` (the day of the step),
    `birth_date`, `last_platelet_donation_date`, `last_whole_blood_donation_date`. Derived,
    each only when its inputs are present:

    - `age_years`: full years from `birth_date` to `assessment_date`;
    - `pulse_pressure_mmhg`: `sbp_mmhg - dbp_mmhg`;
    - `days_since_last_platelet_donation`, `days_since_last_whole_blood_donation`: days from
      the last donation to `assessment_date`;
    - `platelet_donations_365d_incl_this`: `platelet_donations_past_365d` (prior donations in
      the 365 days before) + 1, when context `product` is one of `PLATELET_PRODUCTS`;
    - `apheresis_volume_ml_365d_incl_this`: `apheresis_volume_ml_past_365d` (platelets and
      plasma collected in the 365 days before) + `planned_apheresis_volume_ml`.

    A derived field also given in `raw` must agree. The result does not depend on `step`, which
    is checked only to catch a misspelt step early. Raises ValueError on bad input.
    """
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")
    numbers: dict[str, Number | None] = {}
    dates: dict[str, date] = {}
    for key, value in raw.items():
        if key in _DATE_INPUTS:
            if not isinstance(value, date):
                raise ValueError(f"raw {key} must be a date, got {value!r}")
            dates[key] = value
        else:
            numbers[key] = None if value is None else _checked_number(key, value)
    derived: dict[str, Number] = {}
    on = dates.get("assessment_date")
    if on is not None and "birth_date" in dates:
        derived["age_years"] = age_on(dates["birth_date"], on)
    sbp, dbp = numbers.get("sbp_mmhg"), numbers.get("dbp_mmhg")
    if sbp is not None and dbp is not None:
        derived["pulse_pressure_mmhg"] = sbp - dbp
    for kind in ("platelet", "whole_blood"):
        last = dates.get(f"last_{kind}_donation_date")
        if on is not None and last is not None:
            if last > on:
                raise ValueError(f"last {kind} donation {last} is after {on}")
            derived[f"days_since_last_{kind}_donation"] = (on - last).days
    prior_count = numbers.get("platelet_donations_past_365d")
    if prior_count is not None and context.get("product") in PLATELET_PRODUCTS:
        derived["platelet_donations_365d_incl_this"] = prior_count + 1
    prior_ml = numbers.get("apheresis_volume_ml_past_365d")
    planned_ml = numbers.get("planned_apheresis_volume_ml")
    if prior_ml is not None and planned_ml is not None:
        derived["apheresis_volume_ml_365d_incl_this"] = prior_ml + planned_ml
    for key, value in derived.items():
        given = numbers.get(key)
        if given is not None and given != value:
            raise ValueError(f"raw {key}={given} disagrees with the derived value {value}")
        numbers[key] = value
    return numbers


# -- deriving and re-checking outcomes -------------------------------------------------------

_LEGITIMATE = {
    Outcome.PASS: {Outcome.PASS},
    Outcome.FAIL: {Outcome.FAIL, Outcome.OVERRIDDEN},
    Outcome.ALERT: {Outcome.ALERT, Outcome.ACKNOWLEDGED},
}


def derive_outcomes(
    rule_set: RuleSet,
    step: str,
    values: Mapping[str, Number | None],
    context: Mapping[str, object] = MappingProxyType({}),
    *,
    overrides: Mapping[str, str] = MappingProxyType({}),
    acknowledged: Collection[str] = (),
    rule_ids: Collection[str] | None = None,
) -> Evaluation:
    """The rule outcomes a step records: the one derivation the write path and the verifier share.

    Evaluates the rules of `step` that apply in `context` (`RuleSet.evaluate`), then marks the
    failures in `overrides` (rule id -> reason) overridden and the alerts in `acknowledged`
    acknowledged (`Evaluation.resolve`). With `rule_ids`, judges exactly those rules (of any
    step) on their values instead: a verifier that sees one recorded event knows which rules were
    applied, not the context that selected them. Raises ValueError for a bad value or context, an
    unknown rule id, a blank override reason, or an override or acknowledgement of a rule that
    did not fail or alert.
    """
    if rule_ids is None:
        evaluation = rule_set.evaluate(step, values, context)
    else:
        outcomes = []
        for rule_id in rule_ids:
            try:
                rule = rule_set.rule(rule_id)
            except KeyError:
                raise ValueError(f"{rule_set.ref} has no rule {rule_id}") from None
            value = values.get(rule.field)
            if value is None:
                raise ValueError(f"rule {rule_id} has no value for {rule.field}")
            outcomes.append(rule.judge(_checked_number(rule.field, value)))
        evaluation = Evaluation(tuple(outcomes), (), rule_set.ref)
    return evaluation.resolve(overrides, acknowledged)


def recheck(
    rule_set: RuleSet,
    step: str,
    values: Mapping[str, object],
    context: Mapping[str, object] | None,
    recorded: Sequence[Mapping[str, object]],
) -> list[str]:
    """Compare recorded outcomes (`RuleOutcome.to_json` dicts) with `derive_outcomes`.

    Returns one line per discrepancy; an empty list means consistent. A recorded OVERRIDDEN or
    ACKNOWLEDGED where the rule says FAIL or ALERT is a legitimate resolution; a recorded PASS
    where it says FAIL, a changed value, limit or op, an unknown or repeated outcome is not.

    With `context` (the inputs of the step), every rule that applies must be recorded and no
    other. Without it (a verifier reading one event), each recorded outcome is re-derived from
    its own rule, on the value `values` holds for the rule's field (the event's own copy) or else
    on the recorded value; its rule must belong to `step`, except an override carried to the
    eligibility step from an earlier one.
    """
    expected: dict[str, RuleOutcome] | None = None
    if context is not None:
        numbers = {k: v for k, v in values.items() if v is None or isinstance(v, int | float)}
        try:
            expected = {
                o.rule_id: o for o in derive_outcomes(rule_set, step, numbers, context).outcomes
            }
        except ValueError as exc:
            return [f"cannot re-evaluate {rule_set.ref} step {step}: {exc}"]
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(recorded):
        rule_id = entry.get("rule_id")
        if not isinstance(rule_id, str):
            problems.append(f"recorded outcome #{index} has no rule_id")
            continue
        if rule_id in seen:
            problems.append(f"{rule_id}: recorded more than once")
            continue
        seen.add(rule_id)
        try:
            outcome = Outcome(str(entry.get("outcome")))
        except ValueError:
            problems.append(f"{rule_id}: unknown outcome {entry.get('outcome')!r}")
            continue
        if expected is not None:
            want = expected.get(rule_id)
            if want is None:
                problems.append(
                    f"{rule_id}: recorded, but {rule_set.ref} does not evaluate it here"
                )
                continue
        else:
            derived = _rederive(rule_set, step, values, rule_id, entry, outcome)
            if isinstance(derived, str):
                problems.append(derived)
                continue
            want = derived
        wanted = want.to_json()
        for key in ("value", "limit", "op"):
            if entry.get(key) != wanted[key] or type(entry.get(key)) is bool:
                problems.append(
                    f"{rule_id}: recorded {key} {entry.get(key)!r}, expected {wanted[key]!r}"
                )
        if outcome not in _LEGITIMATE[want.outcome]:
            problems.append(f"{rule_id}: recorded {outcome.value}, the rule says {want.outcome}")
    if expected is not None:
        problems.extend(
            f"{rule_id}: not recorded (the rule says {want.outcome})"
            for rule_id, want in expected.items()
            if rule_id not in seen
        )
    return problems


def _rederive(
    rule_set: RuleSet,
    step: str,
    values: Mapping[str, object],
    rule_id: str,
    entry: Mapping[str, object],
    outcome: Outcome,
) -> RuleOutcome | str:
    """The outcome `derive_outcomes` gives for one recorded rule, or why there is none."""
    try:
        rule = rule_set.rule(rule_id)
    except KeyError:
        return f"{rule_id}: recorded, but {rule_set.ref} has no such rule"
    carried = step == "eligibility" and outcome is Outcome.OVERRIDDEN
    if step and rule.step != step and not carried:
        return f"{rule_id}: belongs to step {rule.step}, not {step}"
    value = values[rule.field] if rule.field in values else entry.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{rule_id}: value {value!r} of {rule.field} is not a number"
    try:
        (derived,) = derive_outcomes(
            rule_set, rule.step, {rule.field: value}, rule_ids=(rule_id,)
        ).outcomes
    except ValueError as exc:
        return f"{rule_id}: {exc}"
    return derived
