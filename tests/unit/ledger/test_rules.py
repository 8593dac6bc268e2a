from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from documents.forms.model import ALL_FORMS
from ledger.rules import (
    FORM_NAMES,
    TIMESTAMP_MODES,
    Evaluation,
    Outcome,
    Rule,
    RuleKind,
    RuleOutcome,
    RuleSet,
    RuleViolation,
    available_parameter_sets,
    available_rule_sets,
    check_parameter_value,
    derive_values,
    load_rule_set,
    load_rule_set_file,
    load_rule_set_ref,
    load_station_parameters,
    load_station_parameters_file,
    recheck,
)

RULES = load_rule_set()
#: SHA-256 of gb18467-2011@1's content. Events reference the rule set by this name: if this test
#: fails, the published file was edited. Revert it and publish a new version instead.
GB18467_V1_DIGEST = "81d18f23cec4e813cdff13898ccacddcea3008983b4c4f2ac6f09966cf8c21f6"
STATION_DEFAULTS_V1_DIGEST = "17fc39bda015dcab7912161d9d1aaa8e43bd6fa21afc5044ecfcce5cdfda0a9c"
STATION_DEFAULTS_V2_DIGEST = "dc930a80c6d1cc44e747ed9b73a015a55f4bd5dc6671111057aa5641eb726e09"

Context = dict[str, object]

F_PLT: Context = {"sex": "F", "product": "platelets_single"}
M_PLT: Context = {"sex": "M", "product": "platelets_double"}

REPEAT: Context = {"repeat_donor_no_reaction": True}
ATHLETE: Context = {"endurance_athlete": True}
SPECIAL: Context = {**F_PLT, "special_matching_approved": True}
WHOLE: Context = {"product": "whole_blood"}

# (rule id, context, values that pass, values that fail or alert)
LIMITS: list[tuple[str, Context, list[float], list[float]]] = [
    ("age.min", F_PLT, [18], [17]),
    ("age.max", F_PLT, [55], [56]),
    ("age.max.repeat_donor", REPEAT, [60], [61]),
    ("weight.male.min", M_PLT, [50], [49.9]),
    ("weight.female.min", F_PLT, [45], [44.9]),
    ("bp.systolic.range", F_PLT, [90, 139], [89, 140]),
    ("bp.diastolic.range", F_PLT, [60, 89], [59, 90]),
    ("bp.pulse_pressure.min", F_PLT, [30], [29]),
    ("pulse.min", F_PLT, [60], [59]),
    ("pulse.min.endurance_athlete", ATHLETE, [50], [49]),
    ("pulse.max", F_PLT, [100], [101]),
    ("temperature.max", F_PLT, [37.5], [37.6]),
    ("hb.male.min", M_PLT, [120], [119]),
    ("hb.female.min", F_PLT, [115], [114, 110]),  # 110 g/L: the seed's example
    ("hct.min", F_PLT, [0.36], [0.359]),
    ("plt.range", F_PLT, [150, 449], [149, 450]),
    ("plt.predicted_post.min", F_PLT, [100], [99]),
    ("interval.platelets_to_platelets.min", F_PLT, [14], [13]),
    ("interval.platelets_to_platelets.special_matching.min", SPECIAL, [7], [6]),
    ("interval.whole_blood_to_platelets.min", F_PLT, [90], [89]),
    ("interval.platelets_to_whole_blood.min", WHOLE, [28], [27]),
    ("cap.platelet_donations_365d.max", F_PLT, [24], [25]),
    ("cap.apheresis_volume_365d.max", F_PLT, [10000], [10001]),
    ("exam.weight.plausible", F_PLT, [150], [151]),
    ("exam.temperature.plausible", F_PLT, [35, 41.9], [34.9, 42]),
    ("exam.sbp.plausible", F_PLT, [60, 249], [59, 250]),
    ("exam.pulse.plausible", F_PLT, [30, 199], [29, 200]),
    ("test.hb.plausible", F_PLT, [200], [201]),
    ("test.hct.plausible", F_PLT, [0.6], [36]),  # HCT typed as a percentage
    ("test.plt.plausible", F_PLT, [1000], [1001]),
    ("collection.volume.plausible", F_PLT, [550], [551]),
]
BOUNDARIES = [
    (rule_id, context, value, fires)
    for rule_id, context, passing, failing in LIMITS
    for values, fires in ((passing, False), (failing, True))
    for value in values
]


def outcome(evaluation: Evaluation, rule_id: str) -> Outcome | None:
    found = [o.outcome for o in evaluation.outcomes if o.rule_id == rule_id]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize(
    ("rule_id", "context", "value", "fires"),
    BOUNDARIES,
    ids=[f"{case[0]}={case[2]}" for case in BOUNDARIES],
)
def test_boundary(rule_id: str, context: dict[str, object], value: float, fires: bool) -> None:
    rule = RULES.rule(rule_id)
    fired = Outcome.FAIL if rule.kind is RuleKind.HARD else Outcome.ALERT
    evaluation = RULES.evaluate(rule.step, {rule.field: value}, context)
    assert outcome(evaluation, rule_id) is (fired if fires else Outcome.PASS)


def test_every_rule_has_boundary_cases() -> None:
    assert [case[0] for case in LIMITS] == [rule.id for rule in RULES.rules]
    assert all(passing and failing for _, _, passing, failing in LIMITS)


def test_volume_551_alerts_and_550_passes() -> None:
    alert = RULES.evaluate("collection", {"product_volume_ml": 551}, {})
    assert alert.outcomes == (
        RuleOutcome("collection.volume.plausible", 551, 550, "le", Outcome.ALERT),
    )
    assert alert.failures == ()
    assert RULES.evaluate("collection", {"product_volume_ml": 550}, {}).blocking() == ()


def test_conditions_select_rules() -> None:
    female = RULES.evaluate("pre_donation_test", {"hb_g_per_l": 118}, F_PLT)
    assert outcome(female, "hb.female.min") is Outcome.PASS
    assert outcome(female, "hb.male.min") is None
    repeat = RULES.evaluate("general_exam", {"age_years": 58}, {"repeat_donor_no_reaction": True})
    assert outcome(repeat, "age.max") is None
    assert outcome(repeat, "age.max.repeat_donor") is Outcome.PASS
    athlete = RULES.evaluate("general_exam", {"pulse_per_min": 55}, {"endurance_athlete": True})
    assert outcome(athlete, "pulse.min") is None
    plasma = RULES.evaluate("pre_donation_test", {"hct_fraction": 0.3}, {"product": "plasma"})
    assert outcome(plasma, "hct.min") is None


def test_missing_values_are_not_evaluated_but_listed() -> None:
    evaluation = RULES.evaluate(
        "pre_donation_test", {"hb_g_per_l": 130, "hct_fraction": None}, M_PLT
    )
    assert [o.rule_id for o in evaluation.outcomes] == ["hb.male.min", "test.hb.plausible"]
    assert set(evaluation.not_evaluated) == {
        "hct.min",
        "plt.range",
        "test.hct.plausible",
        "test.plt.plausible",
    }
    assert evaluation.rule_set_ref == "gb18467-2011@1"


@pytest.mark.parametrize(
    ("values", "context", "message"),
    [
        ({"hb_g_per_l": 130}, {"product": "plasma"}, "rule hb.male.min needs context 'sex'"),
        ({"hb_g_per_l": 130}, {"sex": "female"}, "context sex='female'"),
        ({"pulse_per_min": 70}, {**F_PLT, "endurance_athlete": "yes"}, "must be true or false"),
        ({"hb_g_per_l": "130"}, F_PLT, "must be a number"),
        ({"hb_g_per_l": True}, F_PLT, "must be a number"),
        ({"hb_g_per_l": float("nan")}, F_PLT, "must be finite"),
    ],
)
def test_bad_inputs_are_errors(
    values: dict[str, Any], context: dict[str, object], message: str
) -> None:
    step = "general_exam" if "pulse_per_min" in values else "pre_donation_test"
    with pytest.raises(ValueError, match=message):
        RULES.evaluate(step, values, context)


def test_context_is_needed_only_for_rules_with_a_value() -> None:
    evaluation = RULES.evaluate("general_exam", {"age_years": 30}, {})
    assert [o.rule_id for o in evaluation.outcomes] == ["age.min", "age.max"]
    assert "weight.male.min" in evaluation.not_evaluated
    assert "weight.female.min" in evaluation.not_evaluated


def test_unknown_step_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown step 'exam'"):
        RULES.evaluate("exam", {}, {})


def test_blocking_and_violation_message() -> None:
    evaluation = RULES.evaluate(
        "pre_donation_test", {"hb_g_per_l": 110, "plt_10e9_per_l": 1200}, F_PLT
    )
    assert [o.rule_id for o in evaluation.failures] == ["hb.female.min", "plt.range"]
    assert [o.rule_id for o in evaluation.alerts] == ["test.plt.plausible"]
    assert evaluation.blocking() == evaluation.failures + evaluation.alerts
    with pytest.raises(RuleViolation) as caught:
        evaluation.raise_if_blocked()
    assert caught.value.blocking == evaluation.blocking()
    assert str(caught.value) == (
        "blocked by hb.female.min (fail: 110 not >= 115), plt.range (fail: 1200 not in [150, 450)),"
        " test.plt.plausible (alert: 1200 not <= 1000)"
    )


def test_override_marks_failure_overridden() -> None:
    evaluation = RULES.evaluate("pre_donation_test", {"hb_g_per_l": 110}, F_PLT)
    resolved = evaluation.resolve({"hb.female.min": "physician judgement", "age.min": "other step"})
    assert outcome(resolved, "hb.female.min") is Outcome.OVERRIDDEN
    assert resolved.failures == () and resolved.blocking() == ()
    resolved.raise_if_blocked()
    assert outcome(evaluation, "hb.female.min") is Outcome.FAIL  # the original is unchanged


def test_acknowledgement_marks_alert_acknowledged() -> None:
    evaluation = RULES.evaluate("collection", {"product_volume_ml": 551}, F_PLT)
    assert [o.rule_id for o in evaluation.blocking()] == ["collection.volume.plausible"]
    resolved = evaluation.resolve({}, {"collection.volume.plausible"})
    assert outcome(resolved, "collection.volume.plausible") is Outcome.ACKNOWLEDGED
    assert resolved.blocking() == ()
    assert resolved.resolve({}, {"collection.volume.plausible"}) == resolved


@pytest.mark.parametrize(
    ("overrides", "acknowledgements", "message"),
    [
        ({"hb.female.min": "  "}, set(), "needs a reason"),
        ({"test.hb.plausible": "reason"}, set(), "override for test.hb.plausible, which is pass"),
        ({}, {"hb.female.min"}, "acknowledgement for hb.female.min, which is fail, not alert"),
    ],
)
def test_resolving_what_did_not_fire_is_an_error(
    overrides: dict[str, str], acknowledgements: set[str], message: str
) -> None:
    evaluation = RULES.evaluate("pre_donation_test", {"hb_g_per_l": 110}, F_PLT)
    with pytest.raises(ValueError, match=message):
        evaluation.resolve(overrides, acknowledgements)


def test_outcome_json_is_json_native() -> None:
    evaluation = RULES.evaluate("general_exam", {"sbp_mmhg": 140}, F_PLT)
    data = [o.to_json() for o in evaluation.outcomes]
    assert data[0] == {
        "rule_id": "bp.systolic.range",
        "value": 140,
        "limit": [90, 140],
        "op": "between",
        "outcome": "fail",
    }
    assert json.loads(json.dumps(data)) == data


# -- recheck ------------------------------------------------------------------------------------

TEST_VALUES = {"hb_g_per_l": 110, "hct_fraction": 0.4, "plt_10e9_per_l": 500}


def recorded() -> list[dict[str, object]]:
    evaluation = RULES.evaluate("pre_donation_test", TEST_VALUES, F_PLT)
    return [o.to_json() for o in evaluation.outcomes]


def test_recheck_accepts_faithful_and_resolved_records() -> None:
    assert recheck(RULES, "pre_donation_test", TEST_VALUES, F_PLT, recorded()) == []
    resolved = RULES.evaluate("pre_donation_test", TEST_VALUES, F_PLT).resolve(
        {"hb.female.min": "reason", "plt.range": "reason"}
    )
    records = [o.to_json() for o in resolved.outcomes]
    assert recheck(RULES, "pre_donation_test", TEST_VALUES, F_PLT, records) == []


def edit(target: str, /, **changes: object) -> Callable[[list[dict[str, object]]], None]:
    def apply(records: list[dict[str, object]]) -> None:
        for record in records:
            if record["rule_id"] == target:
                record.update(changes)

    return apply


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (edit("hb.female.min", outcome="pass"), "hb.female.min: recorded pass, the rule says fail"),
        (
            edit("hb.female.min", outcome="acknowledged"),
            "recorded acknowledged, the rule says fail",
        ),
        (edit("hct.min", outcome="overridden"), "hct.min: recorded overridden, the rule says pass"),
        (edit("hb.female.min", outcome="waived"), "hb.female.min: unknown outcome 'waived'"),
        (edit("hb.female.min", value=116, outcome="pass"), "hb.female.min: recorded value 116"),
        (edit("hb.female.min", limit=105, outcome="pass"), "hb.female.min: recorded limit 105"),
        (edit("plt.range", limit=[150, 600]), "plt.range: recorded limit [150, 600]"),
        (edit("hb.female.min", op="le"), "hb.female.min: recorded op 'le'"),
        (edit("hb.female.min", rule_id="hb.male.min"), "hb.male.min: recorded, but"),
        (lambda records: records.pop(0), "hb.female.min: not recorded (the rule says fail)"),
        (
            lambda records: records.append(dict(records[0])),
            "hb.female.min: recorded more than once",
        ),
        (lambda records: records.append({"value": 1}), "recorded outcome #6 has no rule_id"),
    ],
)
def test_recheck_finds_discrepancies(
    tamper: Callable[[list[dict[str, object]]], None], problem: str
) -> None:
    records = recorded()
    tamper(records)
    problems = recheck(RULES, "pre_donation_test", TEST_VALUES, F_PLT, records)
    assert any(problem in line for line in problems), problems


def test_recheck_reports_an_impossible_evaluation() -> None:
    problems = recheck(RULES, "pre_donation_test", TEST_VALUES, {"product": "plasma"}, [])
    assert problems == [
        "cannot re-evaluate gb18467-2011@1 step pre_donation_test:"
        " rule hb.male.min needs context 'sex'"
    ]


# -- derived values -----------------------------------------------------------------------------


def test_derive_values_computes_age_pulse_pressure_intervals_and_caps() -> None:
    raw: dict[str, object] = {
        "assessment_date": date(2024, 6, 1),
        "birth_date": date(1970, 6, 2),
        "sbp_mmhg": 120,
        "dbp_mmhg": 80,
        "last_platelet_donation_date": date(2024, 5, 18),
        "last_whole_blood_donation_date": date(2024, 3, 3),
        "platelet_donations_past_365d": 23,
        "apheresis_volume_ml_past_365d": 9800,
        "planned_apheresis_volume_ml": 250,
        "weight_kg": None,
    }
    values = derive_values("eligibility", raw, F_PLT)
    assert values == {
        "sbp_mmhg": 120,
        "dbp_mmhg": 80,
        "platelet_donations_past_365d": 23,
        "apheresis_volume_ml_past_365d": 9800,
        "planned_apheresis_volume_ml": 250,
        "weight_kg": None,
        "age_years": 53,
        "pulse_pressure_mmhg": 40,
        "days_since_last_platelet_donation": 14,
        "days_since_last_whole_blood_donation": 90,
        "platelet_donations_365d_incl_this": 24,
        "apheresis_volume_ml_365d_incl_this": 10050,
    }
    evaluation = RULES.evaluate("eligibility", values, F_PLT)
    assert [o.rule_id for o in evaluation.failures] == ["cap.apheresis_volume_365d.max"]
    assert "plt.predicted_post.min" in evaluation.not_evaluated


def test_derive_values_counts_this_donation_only_for_platelets() -> None:
    values = derive_values(
        "eligibility", {"platelet_donations_past_365d": 3}, {"product": "plasma"}
    )
    assert "platelet_donations_365d_incl_this" not in values


@pytest.mark.parametrize(
    ("step", "raw", "message"),
    [
        ("exam", {}, "unknown step"),
        ("general_exam", {"birth_date": "1970-01-01"}, "birth_date must be a date"),
        ("general_exam", {"weight_kg": "60"}, "weight_kg must be a number"),
        ("general_exam", {"sbp_mmhg": 120, "dbp_mmhg": 80, "pulse_pressure_mmhg": 30}, "disagrees"),
        (
            "eligibility",
            {"assessment_date": date(2024, 1, 1), "last_platelet_donation_date": date(2024, 1, 2)},
            "is after",
        ),
    ],
)
def test_derive_values_rejects_bad_input(step: str, raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        derive_values(step, raw, F_PLT)


# -- loading --------------------------------------------------------------------------------------


def test_the_referenced_rule_set_is_the_published_one() -> None:
    assert RULES.ref == "gb18467-2011@1"
    assert (RULES.rule_set_id, RULES.version) == ("gb18467-2011", "1")
    assert RULES.effective_from == date(2012, 7, 1)
    assert RULES.digest == GB18467_V1_DIGEST
    assert load_rule_set_ref("gb18467-2011@1") == RULES
    assert "gb18467-2011@1" in available_rule_sets()
    assert "station-defaults@1" not in available_rule_sets()


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("gb18467-2011@99", "no packaged rule set gb18467-2011@99"),
        ("gb18467-2011", "must look like name@version"),
        ("../secrets@1", "bad rule set name"),
        ("station-defaults@1", "missing rule_set_id"),
    ],
)
def test_bad_references_are_errors(ref: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_rule_set_ref(ref)


def test_for_step_and_rule_lookup() -> None:
    assert {r.step for r in RULES.for_step("collection")} == {"collection"}
    assert RULES.rule("hb.female.min").limit == 115
    assert RULES.rule("plt.range").limit == (150, 450)
    with pytest.raises(KeyError):
        RULES.rule("nope.nope")


def packaged_document() -> dict[str, Any]:
    path = Path(__file__).parents[3] / "ledger" / "rulesets" / "gb18467-2011.v1.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def set_rule(index: int, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def apply(document: dict[str, Any]) -> None:
        document["rules"][index][key] = value

    return apply


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (set_rule(0, "op", "gte"), r"rules\[0\] \(age.min\): op 'gte' must be one of"),
        (set_rule(0, "kind", "soft"), r"rules\[0\] \(age.min\): kind 'soft' must be one of"),
        (set_rule(0, "step", "exam"), "step 'exam' must be one of"),
        (set_rule(0, "limit", "18"), "limit must be a number, got '18'"),
        (set_rule(0, "limit", True), "limit must be a number, got True"),
        (set_rule(0, "op", "between"), "limit of a between rule must be"),
        (set_rule(5, "limit", [140, 90]), "must have lo < hi"),
        (set_rule(0, "id", "Age"), "id 'Age' must match"),
        (set_rule(0, "message_en", ""), "message_en must be a non-empty string"),
        (set_rule(0, "applies_to", {"sex": "female"}), "applies_to sex='female'"),
        (set_rule(0, "applies_to", {"sex": 1}), "applies_to sex must be true, false, a string"),
        (set_rule(0, "applies_to", {"sex": []}), "applies_to sex must be true, false, a string"),
        (set_rule(0, "applies_to", {"product": ["plasma", "blood"]}), "applies_to product="),
        (set_rule(0, "applies_to", []), "applies_to must be an object"),
        (set_rule(0, "colour", "red"), r"rules\[0\] \(age.min\): unknown colour"),
        (set_rule(1, "id", "age.min"), "duplicate rule id age.min"),
        (lambda d: d["rules"][0].pop("unit"), "missing unit"),
        (lambda d: d.pop("effective_from"), "missing effective_from"),
        (
            lambda d: d.update(effective_from="2012-13-01"),
            "effective_from must be a YYYY-MM-DD date",
        ),
        (lambda d: d.update(version="v1"), "version 'v1' must match"),
        (lambda d: d.update(rules=[]), "rules must be a non-empty list"),
        (lambda d: d.update(rules=[1]), r"rules\[0\] must be an object"),
        (lambda d: d.update(extra=1), "unknown extra"),
    ],
)
def test_bad_rule_file_gives_a_clear_error(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    document = packaged_document()
    mutate(document)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_rule_set_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "top level must be a JSON object"),
        ('{"rules": 1, "rules": 2}', "duplicate key 'rules'"),
        ('{"limit": NaN}', "NaN is not allowed"),
    ],
)
def test_malformed_json_gives_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_rule_set_file(path)


def test_missing_file_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read rule set"):
        load_rule_set_file(tmp_path / "absent.json")


def test_a_valid_file_loads_like_the_packaged_one(tmp_path: Path) -> None:
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(packaged_document(), indent=1), encoding="utf-8")
    assert load_rule_set_file(path) == RULES  # the digest ignores formatting


def test_rule_checks_op_and_limit_shape() -> None:
    with pytest.raises(ValueError, match="only op 'between'"):
        Rule("x.y", RuleKind.HARD, "general_exam", "weight_kg", "ge", (1, 2), "kg")
    with pytest.raises(ValueError, match="unknown op"):
        Rule("x.y", RuleKind.HARD, "general_exam", "weight_kg", "eq", 1, "kg")
    rule = Rule("x.y", RuleKind.HARD, "general_exam", "weight_kg", "gt", 1, "kg")
    with pytest.raises(ValueError, match="duplicate rule ids"):
        RuleSet("custom", "1", (rule, rule))


def test_custom_rule_set_with_gt_and_lt() -> None:
    rules = (
        Rule("w.gt", RuleKind.HARD, "general_exam", "weight_kg", "gt", 50, "kg"),
        Rule("w.lt", RuleKind.ALERT, "general_exam", "weight_kg", "lt", 50, "kg"),
    )
    evaluation = RuleSet("custom", "1", rules).evaluate("general_exam", {"weight_kg": 50}, {})
    assert evaluation.outcomes == (
        RuleOutcome("w.gt", 50, 50, "gt", Outcome.FAIL),
        RuleOutcome("w.lt", 50, 50, "lt", Outcome.ALERT),
    )


# -- station parameters ---------------------------------------------------------------------------


def test_station_defaults_v1_is_unchanged_and_still_loads() -> None:
    params = load_station_parameters("station-defaults", "1")
    assert params.ref == "station-defaults@1"
    assert params.digest == STATION_DEFAULTS_V1_DIGEST
    assert params.e_signature_enabled is True
    assert params.mpv_enabled is False
    assert params.department == "献血服务二科"
    assert params.form_template_code == "ZJBC/L/献血服务二册/2021-01-01"
    assert params.required_signatures["informed_consent"] == ("donor", "examining_physician")
    assert params.required_signatures["post_collection"] == ("collection_nurse", "donor")
    # v1 predates forms and timestamp_mode: it loads with their defaults
    assert params.forms == ("consent", "registration", "collection")
    assert params.timestamp_mode == "batch"


def test_station_defaults_are_v2_by_default() -> None:
    params = load_station_parameters()
    assert params.ref == "station-defaults@2"
    assert params.digest == STATION_DEFAULTS_V2_DIGEST
    assert params.forms == ("consent", "registration", "collection")
    assert params.timestamp_mode == "batch"
    assert available_parameter_sets() == ["station-defaults@1", "station-defaults@2"]


def test_station_defaults_v2_is_v1_plus_forms_and_timestamp_mode() -> None:
    v1, v2 = load_station_parameters(version="1"), load_station_parameters(version="2")
    ignore = {"version", "digest"}
    assert {k: v for k, v in vars(v1).items() if k not in ignore} == {
        k: v for k, v in vars(v2).items() if k not in ignore
    }
    v1_doc, v2_doc = station_document("1"), station_document("2")
    assert v2_doc["parameters"][: len(v1_doc["parameters"])] == v1_doc["parameters"]
    assert [p["id"] for p in v2_doc["parameters"][len(v1_doc["parameters"]) :]] == [
        "forms",
        "timestamp_mode",
    ]


def test_the_form_names_are_the_renderers_forms() -> None:
    assert tuple(kind.value for kind in ALL_FORMS) == FORM_NAMES
    assert TIMESTAMP_MODES == ("batch", "per_event")


def station_document(version: str = "1") -> dict[str, Any]:
    path = Path(__file__).parents[3] / "ledger" / "rulesets" / f"station-defaults.v{version}.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def set_param(index: int, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def apply(document: dict[str, Any]) -> None:
        document["parameters"][index][key] = value

    return apply


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (set_param(0, "value", "yes"), r"\(e_signature_enabled\): value must be bool"),
        (set_param(0, "id", "e_sigature_enabled"), "unknown parameter"),
        (set_param(0, "kind", "hard"), "kind must be 'parameter'"),
        (set_param(1, "id", "e_signature_enabled"), "duplicate parameter"),
        (lambda d: d["parameters"].pop(0), "missing parameters e_signature_enabled"),
        (set_param(6, "value", {"collection": []}), "must list distinct role names"),
        (
            set_param(6, "value", {"collection": ["nurse", "nurse"]}),
            "must list distinct role names",
        ),
    ],
)
def test_bad_parameter_file_gives_a_clear_error(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    document = station_document()
    mutate(document)
    path = tmp_path / "station.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_station_parameters_file(path)


FORMS, MODE = 7, 8  # indexes of the parameters v2 adds


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (set_param(FORMS, "value", "consent"), r"\(forms\): value must be list"),
        (set_param(FORMS, "value", []), "forms must be a non-empty list"),
        (set_param(FORMS, "value", ["consent", "audit"]), "distinct form names.*'audit'"),
        (set_param(FORMS, "value", ["consent", "consent"]), "distinct form names"),
        (set_param(FORMS, "value", ["consent", 3]), "distinct form names"),
        (set_param(FORMS, "value", [["consent"]]), "distinct form names"),
        (set_param(MODE, "value", "hourly"), "timestamp_mode must be one of batch, per_event"),
        (set_param(MODE, "value", ["batch"]), r"\(timestamp_mode\): value must be str"),
        (set_param(MODE, "id", "forms"), "duplicate parameter"),
    ],
)
def test_bad_v2_parameters_give_a_clear_error(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    document = station_document("2")
    mutate(document)
    path = tmp_path / "station.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_station_parameters_file(path)


@pytest.mark.parametrize(
    ("forms", "mode"),
    [(["collection"], "per_event"), (["registration", "consent"], "batch")],
)
def test_valid_v2_parameters_load(tmp_path: Path, forms: list[str], mode: str) -> None:
    document = station_document("2")
    set_param(FORMS, "value", forms)(document)
    set_param(MODE, "value", mode)(document)
    path = tmp_path / "station.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    params = load_station_parameters_file(path)
    assert params.forms == tuple(forms)
    assert params.timestamp_mode == mode


def test_a_parameter_set_may_omit_either_new_parameter(tmp_path: Path) -> None:
    document = station_document("2")
    document["parameters"].pop(MODE)
    path = tmp_path / "station.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    params = load_station_parameters_file(path)
    assert (params.forms, params.timestamp_mode) == (FORM_NAMES, "batch")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("forms", ["consent"]),
        ("forms", ["collection", "registration", "consent"]),
        ("timestamp_mode", "per_event"),
        ("mpv_enabled", True),
        ("station_name", "某血站"),
    ],
)
def test_a_valid_station_setting_passes(key: str, value: object) -> None:
    check_parameter_value(key, value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("forms", [], "forms must be a non-empty list"),
        ("forms", ["audit"], "distinct form names"),
        ("forms", ["consent", "consent"], "distinct form names"),
        ("forms", "consent", "forms must be list"),
        ("timestamp_mode", "hourly", "timestamp_mode must be one of batch, per_event"),
        ("mpv_enabled", 1, "mpv_enabled must be bool"),
        ("station_name", True, "station_name must be str"),
        ("no_such_key", 1, "unknown parameter 'no_such_key'"),
    ],
)
def test_a_bad_station_setting_is_refused(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_parameter_value(key, value)
