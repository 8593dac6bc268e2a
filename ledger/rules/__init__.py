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

The package: `model` (rules, outcomes, evaluation, rule sets), `derive` (derived values, and
`derive_outcomes`, the one derivation of a step's outcomes that the write path records and
`recheck`, the verifier's check, re-runs), `loading` (strict readers of the rule-set files),
`amendments` (who may amend which step, `amendment-roles@N`) and `parameters` (station
parameter sets and `check_parameter_value`). Every public name is importable from here.
"""

from ledger.rules.amendments import (
    AMENDMENT_POLICY,
    AmendmentPolicy,
    load_amendment_policy,
    load_amendment_policy_ref,
)
from ledger.rules.derive import derive_outcomes, derive_values, recheck
from ledger.rules.loading import (
    available_rule_sets,
    load_rule_set,
    load_rule_set_file,
    load_rule_set_ref,
)
from ledger.rules.model import (
    CONTEXT_VALUES,
    PLATELET_PRODUCTS,
    PRODUCTS,
    STEPS,
    Evaluation,
    Limit,
    Number,
    Outcome,
    Rule,
    RuleKind,
    RuleOutcome,
    RuleSet,
    RuleViolation,
)
from ledger.rules.parameters import _PARAMETER_TYPES as _PARAMETER_TYPES
from ledger.rules.parameters import (
    FORM_NAMES,
    TIMESTAMP_MODES,
    StationParameters,
    available_parameter_sets,
    check_parameter_value,
    load_station_parameters,
    load_station_parameters_file,
)

__all__ = [
    "AMENDMENT_POLICY",
    "CONTEXT_VALUES",
    "FORM_NAMES",
    "PLATELET_PRODUCTS",
    "PRODUCTS",
    "STEPS",
    "TIMESTAMP_MODES",
    "AmendmentPolicy",
    "Evaluation",
    "Limit",
    "Number",
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
    "derive_outcomes",
    "derive_values",
    "load_amendment_policy",
    "load_amendment_policy_ref",
    "load_rule_set",
    "load_rule_set_file",
    "load_rule_set_ref",
    "load_station_parameters",
    "load_station_parameters_file",
    "recheck",
]
