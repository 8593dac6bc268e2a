"""Control-point rules as versioned data (domain.md §2).

Three kinds of control point exist: hard rules from GB 18467-2011 (a failure blocks the step
unless a reason overrides it), plausibility alerts (staff must acknowledge them) and station
parameters (switches and form text). The first two live in rule-set files, the third in
parameter-set files, all under `ledger/rulesets/` and named `<id>.v<version>.json`.

A published file is referenced by stored events as `<id>@<version>` (e.g. `gb18467-2011@1`)
and must therefore return the same content forever: never edit one, publish a new version.
`RuleSet.digest` fingerprints the content; the tests pin it.

Evaluation inputs are explicit. `values` holds measured and computed numbers, with the unit
in the field name (`hb_g_per_l`); `derive_values` computes age, pulse pressure, intervals and
yearly totals from raw inputs. `context` holds facts that select rules: `sex` ("M"/"F"),
`product` (one of `PRODUCTS`) and the flags `repeat_donor_no_reaction`, `endurance_athlete` and
`special_matching_approved` (missing flags count as false).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from ledger.identity import age_on
from signing.errors import LedgerError

__all__ = [
    "CONTEXT_VALUES",
    "FORM_NAMES",
    "PLATELET_PRODUCTS",
    "PRODUCTS",
    "STEPS",
    "TIMESTAMP_MODES",
    "Evaluation",
    "Outcome",
    "Rule",
    "RuleKind",
    "RuleOutcome",
    "RuleSet",
    "RuleViolation",
    "StationParameters",
    "available_parameter_sets",
    "available_rule_sets",
    "check_parameter_value",
    "derive_values",
    "load_rule_set",
    "load_rule_set_file",
    "load_rule_set_ref",
    "load_station_parameters",
    "load_station_parameters_file",
    "recheck",
]

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
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_VERSION = re.compile(r"[1-9][0-9]*")
_RULE_ID = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)+")
_IDENT = re.compile(r"[a-z][a-z0-9_]*")
_FILE = re.compile(r"(?P<name>[a-z0-9]+(?:-[a-z0-9]+)*)\.v(?P<version>[1-9][0-9]*)\.json")
_RULE_KEYS = frozenset(
    {"id", "kind", "step", "field", "op", "limit", "unit", "message_zh", "message_en", "clause"}
)


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
        """One line for an outcome that fired: id, outcome, value and limit."""
        limit = (
            f"[{self.limit[0]}, {self.limit[1]})" if isinstance(self.limit, tuple) else self.limit
        )
        return (
            f"{self.rule_id} ({self.outcome.value}: {self.value} not {_OP_TEXT[self.op]} {limit})"
        )


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
            value = _checked_number(rule.field, value)
            if rule.holds(value):
                outcome = Outcome.PASS
            else:
                outcome = Outcome.FAIL if rule.kind is RuleKind.HARD else Outcome.ALERT
            outcomes.append(RuleOutcome(rule.id, value, rule.limit, rule.op, outcome))
        return Evaluation(tuple(outcomes), tuple(missing), self.ref)


def _checked_number(name: str, value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"value {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"value {name} must be finite, got {value!r}")
    return value


# -- derived values -------------------------------------------------------------------------

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


# -- verification ---------------------------------------------------------------------------

_LEGITIMATE = {
    Outcome.PASS: {Outcome.PASS},
    Outcome.FAIL: {Outcome.FAIL, Outcome.OVERRIDDEN},
    Outcome.ALERT: {Outcome.ALERT, Outcome.ACKNOWLEDGED},
}


def recheck(
    rule_set: RuleSet,
    step: str,
    values: Mapping[str, Number | None],
    context: Mapping[str, object],
    recorded: Sequence[Mapping[str, object]],
) -> list[str]:
    """Compare recorded outcomes (`RuleOutcome.to_json` dicts) with a fresh evaluation.

    Returns one line per discrepancy; an empty list means consistent. A recorded OVERRIDDEN or
    ACKNOWLEDGED where the rule says FAIL or ALERT is a legitimate resolution; a recorded PASS
    where it says FAIL, a changed value, limit or op, a missing or extra outcome is not.
    """
    try:
        expected = {
            o.rule_id: o.to_json() for o in rule_set.evaluate(step, values, context).outcomes
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
        want = expected.get(rule_id)
        if want is None:
            problems.append(f"{rule_id}: recorded, but {rule_set.ref} does not evaluate it here")
            continue
        for key in ("value", "limit", "op"):
            if entry.get(key) != want[key] or type(entry.get(key)) is bool:
                problems.append(
                    f"{rule_id}: recorded {key} {entry.get(key)!r}, expected {want[key]!r}"
                )
        try:
            outcome = Outcome(str(entry.get("outcome")))
        except ValueError:
            problems.append(f"{rule_id}: unknown outcome {entry.get('outcome')!r}")
            continue
        rule_says = Outcome(str(want["outcome"]))
        if outcome not in _LEGITIMATE[rule_says]:
            problems.append(f"{rule_id}: recorded {outcome.value}, the rule says {rule_says.value}")
    problems.extend(
        f"{rule_id}: not recorded (the rule says {want['outcome']})"
        for rule_id, want in expected.items()
        if rule_id not in seen
    )
    return problems


# -- loading --------------------------------------------------------------------------------


class _Document:
    """Strict reader for one JSON object with a path prefix for error messages."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def fail(self, message: str) -> ValueError:
        return ValueError(f"{self.where}: {message}")

    def keys(self, required: Collection[str], optional: Collection[str] = ()) -> None:
        if missing := sorted(set(required) - set(self.data)):
            raise self.fail(f"missing {', '.join(missing)}")
        if extra := sorted(set(self.data) - set(required) - set(optional)):
            raise self.fail(f"unknown {', '.join(extra)}")

    def text(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key} must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(f"{key} {value!r} must match {pattern.pattern}")
        return value

    def day(self, key: str) -> date:
        try:
            return date.fromisoformat(self.text(key))
        except ValueError:
            raise self.fail(f"{key} must be a YYYY-MM-DD date") from None

    def children(self, key: str) -> Iterator[_Document]:
        items = self.data[key]
        if not isinstance(items, list) or not items:
            raise self.fail(f"{key} must be a non-empty list")
        for index, item in enumerate(items):
            where = f"{self.where}: {key}[{index}]"
            if not isinstance(item, dict):
                raise ValueError(f"{where} must be an object")
            if isinstance(item.get("id"), str):
                where += f" ({item['id']})"
            yield _Document(item, where)


def _parse_json(text: str, origin: str) -> tuple[_Document, str]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"{origin}: duplicate key {key!r}")
            result[key] = value
        return result

    def no_constant(name: str) -> None:
        raise ValueError(f"{origin}: {name} is not allowed")

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{origin}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: the top level must be a JSON object")
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return _Document(data, origin), digest


def _number(doc: _Document, value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.fail(f"limit must be a number, got {value!r}")
    return value


def _parse_rule(doc: _Document) -> Rule:
    doc.keys(_RULE_KEYS, optional=("applies_to",))
    try:
        kind = RuleKind(doc.text("kind"))
    except ValueError:
        raise doc.fail(f"kind {doc.data['kind']!r} must be one of {', '.join(RuleKind)}") from None
    step, op, raw_limit = doc.text("step"), doc.text("op"), doc.data["limit"]
    if step not in STEPS:
        raise doc.fail(f"step {step!r} must be one of {', '.join(STEPS)}")
    if op not in _OPS:
        raise doc.fail(f"op {op!r} must be one of {', '.join(sorted(_OPS))}")
    limit: Limit
    if op == "between":
        if not isinstance(raw_limit, list) or len(raw_limit) != 2:
            raise doc.fail(f"limit of a between rule must be [lo, hi], got {raw_limit!r}")
        low, high = _number(doc, raw_limit[0]), _number(doc, raw_limit[1])
        if not low < high:
            raise doc.fail(f"limit [{low}, {high}] must have lo < hi")
        limit = (low, high)
    else:
        limit = _number(doc, raw_limit)
    applies_to: dict[str, object] = {}
    conditions = doc.data.get("applies_to", {})
    if not isinstance(conditions, dict):
        raise doc.fail(f"applies_to must be an object, got {conditions!r}")
    for key, value in conditions.items():
        accepted = value if isinstance(value, list) else [value]
        if not (
            _IDENT.fullmatch(key)
            and accepted
            and (isinstance(value, bool) or all(isinstance(v, str) for v in accepted))
        ):
            raise doc.fail(f"applies_to {key} must be true, false, a string or a list of strings")
        allowed = CONTEXT_VALUES.get(key)
        if allowed is not None and not set(accepted) <= allowed:
            raise doc.fail(f"applies_to {key}={value!r}; expected values from {sorted(allowed)}")
        applies_to[key] = tuple(value) if isinstance(value, list) else value
    return Rule(
        id=doc.text("id", _RULE_ID),
        kind=kind,
        step=step,
        field=doc.text("field", _IDENT),
        op=op,
        limit=limit,
        unit=doc.text("unit"),
        applies_to=MappingProxyType(applies_to),
        message_zh=doc.text("message_zh"),
        message_en=doc.text("message_en"),
        clause=doc.text("clause"),
    )


def _notes(doc: _Document) -> None:
    notes = doc.data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise doc.fail("notes must be a list of strings")


def _rule_set_from_text(text: str, origin: str) -> RuleSet:
    doc, digest = _parse_json(text, origin)
    doc.keys(("rule_set_id", "version", "effective_from", "source", "rules"), ("notes",))
    _notes(doc)
    rules = tuple(_parse_rule(child) for child in doc.children("rules"))
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise doc.fail(f"duplicate rule id {rule.id}")
        seen.add(rule.id)
    return RuleSet(
        rule_set_id=doc.text("rule_set_id", _NAME),
        version=doc.text("version", _VERSION),
        rules=rules,
        effective_from=doc.day("effective_from"),
        source=doc.text("source"),
        digest=digest,
    )


def load_rule_set_file(path: Path) -> RuleSet:
    """Load and strictly validate a rule-set file; raises ValueError naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read rule set: {exc}") from None
    return _rule_set_from_text(text, str(path))


def _packaged(name: str, version: str) -> tuple[Traversable, str]:
    if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
        raise ValueError(f"bad rule set name {name!r} or version {version!r}")
    filename = f"{name}.v{version}.json"
    resource = resources.files("ledger").joinpath("rulesets", filename)
    if not resource.is_file():
        raise ValueError(f"no packaged rule set {name}@{version} (rulesets/{filename})")
    return resource, f"rulesets/{filename}"


def load_rule_set(name: str = "gb18467-2011", version: str = "1") -> RuleSet:
    """Load a packaged rule set. The content of a published `name@version` never changes."""
    resource, origin = _packaged(name, version)
    rule_set = _rule_set_from_text(resource.read_text(encoding="utf-8"), origin)
    if (rule_set.rule_set_id, rule_set.version) != (name, version):
        raise ValueError(f"{origin}: file declares {rule_set.ref}, expected {name}@{version}")
    return rule_set


def load_rule_set_ref(ref: str) -> RuleSet:
    """Load the packaged rule set named by a stored reference such as "gb18467-2011@1"."""
    name, sep, version = ref.partition("@")
    if not sep:
        raise ValueError(f"rule set reference {ref!r} must look like name@version")
    return load_rule_set(name, version)


def _packaged_refs(top_key: str) -> list[str]:
    refs = []
    for entry in resources.files("ledger").joinpath("rulesets").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match and top_key in json.loads(entry.read_text(encoding="utf-8")):
            refs.append(f"{match['name']}@{match['version']}")
    return sorted(refs)


def available_rule_sets() -> list[str]:
    """References of the packaged rule sets, e.g. ["gb18467-2011@1"]."""
    return _packaged_refs("rule_set_id")


# -- station parameters ---------------------------------------------------------------------

_PARAMETER_TYPES: Mapping[str, type] = MappingProxyType(
    {
        "e_signature_enabled": bool,
        "mpv_enabled": bool,
        "station_name": str,
        "department": str,
        "form_phone_callback": str,
        "form_template_code": str,
        "required_signatures": dict,
        "forms": list,
        "timestamp_mode": str,
    }
)
#: The signed forms a station can produce per donation (``documents.forms.model.FormKind``).
FORM_NAMES = ("consent", "registration", "collection")
#: "batch": Merkle batches of events share one RFC 3161 token; "per_event": each event's
#: signature value also gets its own token (CAdES-T), at one TSA request per event.
TIMESTAMP_MODES = ("batch", "per_event")
#: Parameters added after station-defaults@1: a parameter set without them (a published v1)
#: loads with these values; one that has them is validated.
_PARAMETER_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"forms": FORM_NAMES, "timestamp_mode": "batch"}
)


def check_parameter_value(key: str, value: Any) -> None:
    """Raise ValueError unless `value` is a valid value of the station parameter `key`: the
    checks of the parameter's type, and of the values of ``forms`` and ``timestamp_mode`` (for a
    parameter set file, and for whoever changes a station setting later)."""
    expected = _PARAMETER_TYPES.get(key)
    if expected is None:
        raise ValueError(
            f"unknown parameter {key!r}; expected one of {', '.join(_PARAMETER_TYPES)}"
        )
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ValueError(f"{key} must be {expected.__name__}, got {value!r}")
    items = cast(list[Any], value) if key == "forms" else []
    if key == "forms" and not (
        items
        and all(isinstance(f, str) and f in FORM_NAMES for f in items)
        and len(set(items)) == len(items)
    ):
        raise ValueError(
            f"forms must be a non-empty list of distinct form names from "
            f"{', '.join(FORM_NAMES)}, got {value!r}"
        )
    if key == "timestamp_mode" and value not in TIMESTAMP_MODES:
        raise ValueError(
            f"timestamp_mode must be one of {', '.join(TIMESTAMP_MODES)}, got {value!r}"
        )


@dataclass(frozen=True)
class StationParameters:
    """Per-station switches and form text (kind "parameter").

    `required_signatures` maps a signature step to its roles: the first records and signs the
    step's event, the others co-sign with SignatureApplied events. `forms` lists the signed
    forms produced per donation (names from `FORM_NAMES`); `timestamp_mode` is one of
    `TIMESTAMP_MODES`. Both were added in station-defaults@2; a set without them gets
    `_PARAMETER_DEFAULTS`.
    """

    parameter_set_id: str
    version: str
    e_signature_enabled: bool
    mpv_enabled: bool
    station_name: str
    department: str
    form_phone_callback: str
    form_template_code: str
    required_signatures: Mapping[str, tuple[str, ...]] = dataclasses.field(hash=False)
    forms: tuple[str, ...] = FORM_NAMES  # in FORM_NAMES, distinct, not empty
    timestamp_mode: str = "batch"  # one of TIMESTAMP_MODES
    digest: str = ""

    @property
    def ref(self) -> str:
        return f"{self.parameter_set_id}@{self.version}"


def _parameters_from_text(text: str, origin: str) -> StationParameters:
    doc, digest = _parse_json(text, origin)
    doc.keys(("parameter_set_id", "version", "effective_from", "source", "parameters"), ("notes",))
    _notes(doc)
    doc.day("effective_from")
    doc.text("source")
    values: dict[str, Any] = {}
    for child in doc.children("parameters"):
        child.keys(("id", "kind", "value", "description_zh", "description_en"))
        key = child.text("id")
        if child.text("kind") != "parameter":
            raise child.fail("kind must be 'parameter'")
        if key not in _PARAMETER_TYPES:
            raise child.fail(f"unknown parameter; expected one of {', '.join(_PARAMETER_TYPES)}")
        if key in values:
            raise child.fail("duplicate parameter")
        if not isinstance(child.data["value"], _PARAMETER_TYPES[key]):
            raise child.fail(f"value must be {_PARAMETER_TYPES[key].__name__}")
        child.text("description_zh")
        child.text("description_en")
        values[key] = child.data["value"]
    if missing := sorted(set(_PARAMETER_TYPES) - set(values) - set(_PARAMETER_DEFAULTS)):
        raise doc.fail(f"missing parameters {', '.join(missing)}")
    for key, default in _PARAMETER_DEFAULTS.items():
        values.setdefault(key, list(default) if isinstance(default, tuple) else default)
    for key in _PARAMETER_DEFAULTS:
        try:
            check_parameter_value(key, values[key])
        except ValueError as exc:
            raise doc.fail(str(exc)) from None
    forms = values.pop("forms")
    signatures: dict[str, tuple[str, ...]] = {}
    for step, roles in values.pop("required_signatures").items():
        if not (
            _IDENT.fullmatch(step)
            and isinstance(roles, list)
            and roles
            and all(isinstance(r, str) and _IDENT.fullmatch(r) for r in roles)
            and len(set(roles)) == len(roles)
        ):
            raise doc.fail(f"required_signatures {step!r} must list distinct role names")
        signatures[step] = tuple(roles)
    return StationParameters(
        parameter_set_id=doc.text("parameter_set_id", _NAME),
        version=doc.text("version", _VERSION),
        required_signatures=MappingProxyType(signatures),
        forms=tuple(forms),
        digest=digest,
        **values,
    )


def load_station_parameters_file(path: Path) -> StationParameters:
    """Load and strictly validate a parameter-set file; raises ValueError naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read parameter set: {exc}") from None
    return _parameters_from_text(text, str(path))


def load_station_parameters(
    name: str = "station-defaults", version: str = "2"
) -> StationParameters:
    """Load a packaged parameter set (by default the newest defaults, station-defaults@2).
    The content of a published `name@version` never changes."""
    resource, origin = _packaged(name, version)
    params = _parameters_from_text(resource.read_text(encoding="utf-8"), origin)
    if (params.parameter_set_id, params.version) != (name, version):
        raise ValueError(f"{origin}: file declares {params.ref}, expected {name}@{version}")
    return params


def available_parameter_sets() -> list[str]:
    """References of the packaged station parameter sets, e.g. ["station-defaults@1", ...]."""
    return _packaged_refs("parameter_set_id")
