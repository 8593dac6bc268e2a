"""Amendments re-run the step's control points (issue 13 §3): a hard-rule failure is refused
unless an authorised role records a reasoned override, shown on the form, in the read models
and in the metrics; who may amend which step is versioned data the verifier re-checks."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from api.cli import main
from documents.forms.model import FormKind
from documents.forms.record import donation_record
from documents.forms.templates import FormContext, build_form
from ledger.canonical import event_body, event_canonical_bytes, sha256_hex
from ledger.controls import recheck_event
from ledger.donation import Donation, Role, Step
from ledger.events import WorkflowError
from ledger.rules import Outcome
from ledger.rules.amendments import AMENDMENT_POLICY, load_amendment_policy
from projections.quality_report import quality_report
from services.forms import produce_forms
from services.station import Station
from tests.conftest import make_settings
from tests.unit.projections.builder import projected
from tests.workflow import complete, register, through_test

#: SHA-256 of amendment-roles@1's content: amendments name it, so it never changes.
AMENDMENT_ROLES_V1_DIGEST = "ade6315230b16cfe6d671484ab83cb023b05faeaeae1ff747c5689447462e3a2"


def _events(station: Station) -> list[tuple[int, Any]]:
    app = station.app
    return [
        (n.id, app.mapper.to_domain_event(n))
        for n in app.recorder.select_notifications(1, 1_000_000)
    ]


def _count(station: Station) -> int:
    return len(station.app.recorder.select_notifications(1, 1_000_000))


def _examined(station: Station, **exam: Any) -> UUID:
    donation_id = register(station, sex="F")
    through_test(station, donation_id, **exam)
    return donation_id


def _amend(station: Station, donation_id: UUID, staff: str = "P001", **kw: Any) -> Any:
    fields: dict[str, Any] = {"step": "general_exam", "reason": "transcription error"}
    fields.update(kw)
    return station.app.amend(donation_id, station.signer(staff), **fields)


def _amendments(station: Station, donation_id: UUID) -> list[Donation.RecordAmended]:
    return [
        e
        for _, e in _events(station)
        if isinstance(e, Donation.RecordAmended) and e.originator_id == donation_id
    ]


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with Station.initialise(make_settings(tmp_path / "home", db)) as st:
        yield st


# -- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("weight_kg", 20.0, "weight.female.min"),
        ("temperature_c", 99.0, "temperature.max"),
        ("sbp_mmhg", 100, "bp.pulse_pressure.min"),  # derived: 100 - 80 < 30
    ],
)
def test_an_amendment_failing_a_hard_rule_is_refused_and_writes_nothing(
    station: Station, field: str, value: float, rule: str
) -> None:
    donation_id = _examined(station)
    before = _count(station)
    with pytest.raises(WorkflowError, match=rf"hard rule failed: {rule}"):
        _amend(station, donation_id, field=field, new_value=value)
    assert _count(station) == before
    assert station.app.donation(donation_id).steps[Step.EXAM]["values"][field] != value


def test_an_alert_raised_by_an_amendment_needs_acknowledging(station: Station) -> None:
    donation_id = _examined(station)
    before = _count(station)
    with pytest.raises(WorkflowError, match="unacknowledged plausibility alert"):
        _amend(station, donation_id, field="weight_kg", new_value=160.0)
    assert _count(station) == before
    outcomes = _amend(
        station,
        donation_id,
        field="weight_kg",
        new_value=160.0,
        acknowledged=["exam.weight.plausible"],
    )
    assert {o.rule_id: o.outcome for o in outcomes}["exam.weight.plausible"] == (
        Outcome.ACKNOWLEDGED
    )
    assert _count(station) == before + 1


@pytest.mark.parametrize(
    ("staff", "step", "field", "value", "override", "message"),
    [
        # An exam value by a physician, not by any staff member.
        ("N001", "general_exam", "temperature_c", 36.9, "", "amended by examining_physician"),
        ("C001", "general_exam", "weight_kg", 61.0, "", "not registration_clerk"),
        # A technician corrects test values, but only a physician overrides a failure.
        ("T001", "pre_donation_test", "hb_g_per_l", 100.0, "rechecked", "override on"),
        # The donor's signed consent is not amended by staff.
        ("P001", "informed_consent", "fingerprint_verified", False, "", "by nobody"),
    ],
)
def test_an_amendment_by_a_role_the_policy_does_not_allow_is_refused(
    station: Station,
    staff: str,
    step: str,
    field: str,
    value: object,
    override: str,
    message: str,
) -> None:
    donation_id = _examined(station)
    before = _count(station)
    with pytest.raises(WorkflowError, match=message):
        _amend(
            station,
            donation_id,
            staff,
            step=step,
            field=field,
            new_value=value,
            override_reason=override,
        )
    assert _count(station) == before


def test_an_override_where_nothing_fails_is_refused(station: Station) -> None:
    donation_id = _examined(station)
    before = _count(station)
    with pytest.raises(WorkflowError, match="nothing to override"):
        _amend(station, donation_id, field="weight_kg", new_value=61.0, override_reason="x")
    assert _count(station) == before


def test_the_donations_context_selects_the_rules_as_on_entry(station: Station) -> None:
    """An endurance athlete's pulse is held to 50, not 60, on amendment as on entry."""
    donation_id = register(station, sex="F")
    through_test(station, donation_id, pulse_per_min=55, endurance_athlete=True)
    outcomes = _amend(station, donation_id, field="pulse_per_min", new_value=52)
    assert {o.rule_id: o.outcome for o in outcomes} == {
        "pulse.min.endurance_athlete": Outcome.PASS,
        "pulse.max": Outcome.PASS,
        "exam.pulse.plausible": Outcome.PASS,
    }


# -- an authorised override -------------------------------------------------------------------


def _overridden(station: Station) -> UUID:
    """A completed donation whose exam weight a physician amends to 20 kg with an override."""
    donation_id = complete(station)
    outcomes = _amend(
        station,
        donation_id,
        field="weight_kg",
        new_value=20.0,
        override_reason="体重秤故障，医师复核后放行 (scale fault, physician review)",
    )
    assert {o.rule_id: o.outcome for o in outcomes}["weight.female.min"] is Outcome.OVERRIDDEN
    return donation_id


def test_an_authorised_override_is_recorded_in_the_signed_event(station: Station) -> None:
    donation_id = _overridden(station)
    (event,) = _amendments(station, donation_id)
    assert event.overrides == {
        "weight.female.min": "体重秤故障，医师复核后放行 (scale fault, physician review)"
    }
    assert event.amendment_policy == AMENDMENT_POLICY
    assert event.actor_role == Role.EXAMINING_PHYSICIAN
    body = event_body(event)
    assert body["overrides"] == event.overrides  # hashed and signed
    assert {o["rule_id"]: o["outcome"] for o in event.rule_outcomes}["weight.female.min"] == (
        "overridden"
    )
    assert station.verifier().verify().ok
    # The donation's exam now holds the overridden outcome, not the entry's pass.
    exam = station.app.donation(donation_id).steps[Step.EXAM]
    assert {o["rule_id"]: o["outcome"] for o in exam["rule_outcomes"]}["weight.female.min"] == (
        "overridden"
    )


def test_the_override_shows_in_the_read_models_and_on_the_form(station: Station) -> None:
    donation_id = _overridden(station)
    events = [(p, e) for p, e in _events(station) if e.originator_id == donation_id]
    record = donation_record(events)
    exam = record["steps"]["general_exam"]
    assert "weight.female.min" not in exam["rules"]["passed"]
    (fired,) = [o for o in exam["rules"]["fired"] if o["rule_id"] == "weight.female.min"]
    assert fired["outcome"] == "overridden" and fired["value"] == 20.0
    (override,) = exam["overrides"]
    assert override["reason"].startswith("体重秤故障") and override["by"] == "STAFF:P001"
    context = FormContext(
        record=record,
        parameters=station.app.station().parameters,
        people={},
        trusted_times={},
        events=[],
        unsignable={},
        system_subject="SYSTEM",
    )
    form = build_form(FormKind.CONSENT, context)
    shown = {f.label: f.value for s in form.sections for f in s.fields}
    assert "超控 weight.female.min" in shown["体重"]
    assert "合格" not in shown["检查结论"].replace("不合格", "")
    assert shown["检查结论"].startswith("超控放行 weight.female.min = 20.0")
    assert any(note.startswith("超控") for note in form.notes)
    assert form.data["overrides"]["general_exam"][0]["rule_id"] == "weight.female.min"
    # The collection form does not show the exam: no override note there.
    assert "overrides" not in json.dumps(build_form(FormKind.COLLECTION, context).data["overrides"])


def test_a_failed_value_is_never_shown_as_passed_on_the_form(station: Station) -> None:
    donation_id = _examined(station, weight_kg=40.0)  # recorded as failed on entry
    events = [(p, e) for p, e in _events(station) if e.originator_id == donation_id]
    context = FormContext(donation_record(events), {}, {}, {}, [], {}, "SYSTEM")
    shown = {
        f.label: f.value for s in build_form(FormKind.CONSENT, context).sections for f in s.fields
    }
    assert shown["检查结论"] == "不合格 (weight.female.min)"


def test_overrides_on_amendments_are_counted_in_the_metrics(
    station: Station, tmp_path: Path
) -> None:
    _overridden(station)
    plain = complete(station)
    _amend(station, plain, field="temperature_c", new_value=36.9)
    with projected(tmp_path, [e for _, e in _events(station)]) as views:
        report = quality_report(views["quality_metrics"].view, date(2000, 1, 1), date(2100, 1, 1))
        rate = report.rate("amendment_override_rate")
        assert (rate.numerator, rate.denominator) == (1, 2)
        assert report.count("amendment_overrides") == 1
        assert report.rate("amendment_override_rate", "staff", "P001").numerator == 1


# -- the verifier re-checks it ----------------------------------------------------------------


def test_the_verifier_rechecks_the_amending_role_and_the_override(station: Station) -> None:
    donation_id = _overridden(station)
    (recorded,) = _amendments(station, donation_id)
    event: Any = recorded  # eventsourcing types replace() by the base event's fields
    rule_set = station.app.rule_set
    assert recheck_event(rule_set, event, None) == []
    by_nurse = dataclasses.replace(event, actor_role="collection_nurse")
    assert any("amendment not allowed" in p for p in recheck_event(rule_set, by_nurse, None))
    passed = [
        {**o, "outcome": "pass"} if o["outcome"] == "overridden" else o for o in event.rule_outcomes
    ]
    as_pass = dataclasses.replace(event, rule_outcomes=passed, overrides={})
    assert any(
        "weight.female.min: recorded pass, the rule says fail" in p
        for p in recheck_event(rule_set, as_pass, None)
    )
    unreasoned = dataclasses.replace(event, overrides={"weight.female.min": " "})
    assert any("without a reason" in p for p in recheck_event(rule_set, unreasoned, None))


def test_a_version_1_amendment_reads_and_keeps_its_hash(station: Station) -> None:
    """Stored before class version 2: upcast with no overrides and no policy, and its canonical
    body (hence its hash and signature) is the one it was signed with."""
    donation_id = complete(station)
    _amend(station, donation_id, field="temperature_c", new_value=36.9)
    (event,) = _amendments(station, donation_id)
    later = ("overrides", "amendment_policy", *V3_FIELDS)
    v1_body = {k: v for k, v in event_body(event).items() if k not in later}
    mapper = station.app.mapper
    stored = mapper.to_stored_event(event)
    raw = _decode(mapper, stored.state)
    assert raw["class_version"] == 3
    for key in ("class_version", *later, "personal_salt"):
        raw.pop(key)
    old = dataclasses.replace(stored, state=_encode(mapper, raw))
    upcast = mapper.to_domain_event(old)
    assert isinstance(upcast, Donation.RecordAmended)
    assert upcast.overrides == {} and upcast.amendment_policy == ""
    assert event_body(upcast) == v1_body
    assert sha256_hex(event_canonical_bytes(upcast)) == sha256_hex(
        json.dumps(v1_body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert recheck_event(station.app.rule_set, upcast, None) == []


#: The fields RecordAmended v3 added (how a personal value's correction is signed).
V3_FIELDS = ("old_value_masked", "new_value_masked", "old_value_commitment", "new_value_commitment")


def _decode(mapper: Any, data: bytes) -> dict[str, Any]:
    if mapper.cipher is not None:
        data = mapper.cipher.decrypt(data)
    if mapper.compressor is not None:
        data = mapper.compressor.decompress(data)
    state: dict[str, Any] = mapper.transcoder.decode(data)
    return state


def _encode(mapper: Any, state: dict[str, Any]) -> bytes:
    data: bytes = mapper.transcoder.encode(state)
    if mapper.compressor is not None:
        data = mapper.compressor.compress(data)
    if mapper.cipher is not None:
        data = mapper.cipher.encrypt(data)
    return data


# -- the policy data --------------------------------------------------------------------------


def test_the_policy_covers_every_step_with_known_roles() -> None:
    policy = load_amendment_policy()
    assert set(policy.amend) == {step.value for step in Step}
    roles = {role.value for role in Role}
    for step in policy.amend:
        assert set(policy.amend[step]) | set(policy.override[step]) <= roles
    assert policy.problem("general_exam", "examining_physician", overriding=True) is None
    assert policy.problem("general_exam", "collection_nurse", overriding=False) is not None


def test_the_policy_file_is_frozen() -> None:
    assert load_amendment_policy().digest == AMENDMENT_ROLES_V1_DIGEST


# -- the command line -------------------------------------------------------------------------


def test_cli_amend_refuses_a_failure_and_records_an_override(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    with Station.open(
        make_settings(cli_env / "home", f"sqlite:///{cli_env / 'ledger.sqlite'}")
    ) as st:
        donation_id = complete(st)
        number = st.app.donation(donation_id).donation_no
        before = _count(st)
    argv = [
        *("amend", number, "--step", "general_exam", "--field", "temperature_c"),
        *("--value", "99.0", "--reason", "typo", "--staff", "P001"),
    ]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "temperature.max" in err
    override = ["--override-reason", "rechecked", "--acknowledge", "exam.temperature.plausible"]
    assert main([*argv, *override]) == 0
    out = capsys.readouterr().out
    assert "temperature.max (overridden: 99.0 not <= 37.5)" in out
    assert "exam.temperature.plausible (acknowledged" in out
    with Station.open(
        make_settings(cli_env / "home", f"sqlite:///{cli_env / 'ledger.sqlite'}")
    ) as st:
        assert _count(st) == before + 1


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils)")
def test_the_signed_consent_form_prints_the_override_not_a_pass(
    station: Station, tmp_path: Path
) -> None:
    donation_id = _overridden(station)
    paths = produce_forms(station, donation_id, tmp_path / "forms", None)
    consent = next(p for p in paths if p.name.endswith("-consent.pdf"))
    page = subprocess.run(
        ["pdftotext", str(consent), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = "".join(page.split())
    assert "超控放行weight.female.min=20.0" in flat
    assert "体重秤故障" in flat and "超控weight.female.min" in flat
    assert "检查结论合格" not in flat
