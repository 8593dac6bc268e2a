"""Each rate of docs/metrics.md, from hand-built event sequences with chosen times.

Days are station days (UTC+8): 2026-03-31T16:30Z is 2026-04-01 00:30 at the station.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from projections.base import Seen
from projections.quality_report import QualityReport, quality_report
from projections.runner import Views
from projections.store import RowCache, view_digest
from tests.unit.projections.builder import DonationEvents, at, interleave, projected

MARCH = (date(2026, 3, 1), date(2026, 3, 31))
APRIL = (date(2026, 4, 1), date(2026, 4, 30))
YEAR = (date(2026, 1, 1), date(2026, 12, 31))


def _report(views: Views, period: tuple[date, date]) -> QualityReport:
    return quality_report(views["quality_metrics"].view, *period)


def test_record_modification_rate_counts_donations_with_any_amendment_by_registration_day(
    tmp_path: Path,
) -> None:
    amended_twice = DonationEvents().complete(at("2026-03-10T02:00"), "9000626000001")
    amended_twice.amend(at("2026-03-10T05:00"), "general_exam", "temperature_c", 36.6, 36.8)
    amended_twice.amend(at("2026-03-11T05:00"), "general_exam", "temperature_c", 36.8, 36.9)
    clean = DonationEvents().complete(at("2026-03-10T03:00"), "9000626000002")
    deferred = DonationEvents().deferred(at("2026-03-12T03:00"))
    # Registered 2026-03-31 17:00 UTC = 2026-04-01 01:00 at the station; amended in May.
    april = DonationEvents().complete(at("2026-03-31T17:00"), "9000626000003")
    april.amend(at("2026-05-02T01:00"), "collection", "product_volume_ml", 260, 250, who="N001")
    events = interleave(amended_twice.events, clean.events, deferred.events, april.events)
    with projected(tmp_path, events) as views:
        march, april_report, year = (_report(views, p) for p in (MARCH, APRIL, YEAR))
    rate = march.rate("record_modification_rate")
    assert (rate.numerator, rate.denominator) == (1, 3)  # deferred donations count too
    assert rate.value == pytest.approx(1 / 3)
    assert (april_report.rate("record_modification_rate").numerator, 1) == (1, 1)
    by_month = {
        m: (r.numerator, r.denominator)
        for m in ("2026-03", "2026-04", "2026-05")
        if (r := year.rate("record_modification_rate", "month", m)).denominator
    }
    assert by_month == {"2026-03": (1, 3), "2026-04": (1, 1)}  # May: the amendment's month only
    assert year.count("amendments", "month", "2026-03") == 2
    assert year.count("amendments", "month", "2026-05") == 1
    assert [i.donation_no for i in year.items if i.metric == "record_modification_rate"] == [
        "9000626000001",
        "9000626000003",
    ]


def test_step_and_field_modification_rates(tmp_path: Path) -> None:
    amended = DonationEvents().complete(at("2026-03-10T02:00"), "9000626000001")
    amended.amend(at("2026-03-10T05:00"), "general_exam", "temperature_c", 36.6, 36.8)
    amended.amend(at("2026-03-10T06:00"), "general_exam", "temperature_c", 36.8, 36.9)
    amended.amend(at("2026-03-10T07:00"), "general_exam", "weight_kg", 60.0, 61.0, who="P002")
    clean = DonationEvents().complete(at("2026-03-10T03:00"), "9000626000002")
    with projected(tmp_path, interleave(amended.events, clean.events)) as views:
        report = _report(views, MARCH)
    # Ten step records each (registration ... heat seal); one of the 20 was amended.
    step = report.rate("step_modification_rate")
    assert (step.numerator, step.denominator) == (1, 20)
    exam = report.rate("step_modification_rate", "step", "general_exam")
    assert (exam.numerator, exam.denominator) == (1, 2)
    # The exam records 8 values; 2 distinct fields were amended (3 amendments).
    field = report.rate("field_modification_rate", "step", "general_exam")
    assert (field.numerator, field.denominator) == (2, 16)
    # By staff: the recorder of the amended step (P001), not the amending person.
    assert report.rate("step_modification_rate", "staff", "P001").numerator == 1
    assert report.rate("step_modification_rate", "staff", "P002").numerator == 0
    assert report.count("amendments") == 3


def test_missing_signature_rates_count_due_slots_at_sealing(tmp_path: Path) -> None:
    signed = DonationEvents().complete(at("2026-03-10T02:00"), "9000626000001")
    staff_missing = DonationEvents().complete(
        at("2026-03-10T03:00"), "9000626000002", missing=["informed_consent:examining_physician"]
    )
    deferred = DonationEvents().deferred(at("2026-03-10T04:00"))  # collection slots not reached
    switched_off = DonationEvents(e_signature=False)
    switched_off.register(at("2026-03-10T05:00")).consent(at("2026-03-10T05:01"))
    switched_off.exam(at("2026-03-10T05:02")).test(at("2026-03-10T05:03"))
    switched_off.assess(at("2026-03-10T05:04")).number(at("2026-03-10T05:05"), "9000626000004")
    switched_off.pre_collection(at("2026-03-10T05:06")).collect(at("2026-03-10T05:07"))
    switched_off.post_collection(at("2026-03-10T05:08")).heat_seal(at("2026-03-10T05:09"))
    switched_off.seal(at("2026-03-10T05:10"))
    # Sealed 2026-03-31 16:30 UTC = 2026-04-01 00:30 at the station: an April slot.
    donor_missing = DonationEvents().complete(
        at("2026-03-31T15:00"),
        "9000626000005",
        missing=["post_collection:donor"],
        sealed=at("2026-03-31T16:30"),
    )
    events = interleave(
        signed.events,
        staff_missing.events,
        deferred.events,
        switched_off.events,
        donor_missing.events,
    )
    with projected(tmp_path, events) as views:
        march, april = _report(views, MARCH), _report(views, APRIL)
    staff = march.rate("staff_missing_signature_rate")
    assert (staff.numerator, staff.denominator) == (1, 3)  # e-signature off: not in the base
    donor = march.rate("donor_missing_signature_rate")
    assert (donor.numerator, donor.denominator) == (0, 4)  # the deferral reached no collection
    assert march.count("slots_not_required") == 3
    # The examining physician who examined that donor answers for the consent co-signature.
    assert march.rate("staff_missing_signature_rate", "staff", "P001").numerator == 1
    assert march.rate("staff_missing_signature_rate", "role", "examining_physician").numerator
    late = april.rate("donor_missing_signature_rate")
    assert (late.numerator, late.denominator) == (1, 2)
    # A donor slot is answered for by the nurse who recorded its step.
    assert april.rate("donor_missing_signature_rate", "staff", "N001").numerator == 1
    assert april.rate("donor_missing_signature_rate", "step", "post_collection").numerator == 1
    missing = [(i.metric, i.donation_no, i.what) for i in march.items + april.items]
    assert (
        "staff_missing_signature_rate",
        "9000626000002",
        "slot informed_consent:examining_physician missing",
    ) in missing
    assert (
        "donor_missing_signature_rate",
        "9000626000005",
        "slot post_collection:donor missing",
    ) in missing


def test_override_rate_is_over_eligible_assessments(tmp_path: Path) -> None:
    overridden = DonationEvents()
    overridden.register(at("2026-03-10T02:00")).consent(at("2026-03-10T02:01"))
    overridden.exam(at("2026-03-10T02:02")).test(at("2026-03-10T02:03"))
    overridden.assess(at("2026-03-10T02:04"), overrides={"plt.range": "retest 448, approved"})
    plain = DonationEvents()
    plain.register(at("2026-03-10T03:00")).consent(at("2026-03-10T03:01"))
    plain.exam(at("2026-03-10T03:02")).test(at("2026-03-10T03:03")).assess(at("2026-03-10T03:04"))
    deferred = DonationEvents().deferred(at("2026-03-10T04:00"))
    with projected(tmp_path, interleave(overridden.events, plain.events, deferred.events)) as v:
        report = _report(v, MARCH)
    rate = report.rate("override_rate")
    assert (rate.numerator, rate.denominator) == (1, 2)
    assert report.count("overrides") == 1
    assert report.count("deferrals") == 1
    assert report.rate("override_rate", "staff", "P002").numerator == 1


def test_alert_rate_is_over_steps_that_have_alert_rules(tmp_path: Path) -> None:
    alerted = DonationEvents().complete(at("2026-03-10T02:00"), "9000626000001", volume=560)
    plain = DonationEvents().complete(at("2026-03-10T03:00"), "9000626000002")
    with projected(tmp_path, interleave(alerted.events, plain.events)) as views:
        report = _report(views, MARCH)
    # general_exam, pre_donation_test and collection carry alert rules: 3 records each.
    rate = report.rate("alert_acknowledgement_rate")
    assert (rate.numerator, rate.denominator) == (1, 6)
    collection = report.rate("alert_acknowledgement_rate", "step", "collection")
    assert (collection.numerator, collection.denominator) == (1, 2)
    assert report.count("alerts") == 1


def test_monthly_counts_and_inclusive_period(tmp_path: Path) -> None:
    first = DonationEvents().complete(at("2026-02-28T15:59"), "9000626000001")  # 23:59 Feb 28
    second = DonationEvents().complete(at("2026-02-28T16:00"), "9000626000002")  # 00:00 Mar 1
    third = DonationEvents().deferred(at("2026-03-31T15:00"))  # 23:00 Mar 31
    with projected(tmp_path, interleave(first.events, second.events, third.events)) as views:
        march = _report(views, MARCH)
        year = _report(views, YEAR)
        with pytest.raises(ValueError, match="before it starts"):
            _report(views, (date(2026, 3, 2), date(2026, 3, 1)))
    # Each step counts on its own day: the first donor registered on Feb 28 (station time)
    # and was examined and collected minutes later, on March 1.
    assert march.count("registrations") == 2
    assert year.count("registrations", "month", "2026-02") == 1
    assert march.count("collections") == 2
    assert year.count("exams", "month", "2026-03") == 3
    assert year.count("tests", "month", "2026-03") == 3
    assert year.months()[:3] == ["2026-01", "2026-02", "2026-03"]
    assert len(year.months()) == 12


def test_quality_facts_do_not_depend_on_how_the_log_is_cut(tmp_path: Path) -> None:
    """Event by event (one transaction each) and in one batch give the same view."""
    a = DonationEvents().complete(
        at("2026-03-10T02:00"), "9000626000001", missing=["pre_collection:donor"]
    )
    a.amend(at("2026-03-11T02:00"), "collection", "plasma_ml", 0, 10, who="N001")
    b = DonationEvents().deferred(at("2026-03-10T02:30"))
    events = interleave(a.events, b.events)
    (tmp_path / "one").mkdir()
    with projected(tmp_path / "one", events) as one_by_one:
        expected = view_digest(one_by_one["quality_metrics"].view)
    (tmp_path / "batch").mkdir()
    with projected(tmp_path / "batch", []) as views:
        projection = views["quality_metrics"]
        rows = RowCache(projection.view)
        with projection.view.write_transaction() as curs:
            rows.bind(curs)
            for position, domain_event in enumerate(events, start=1):
                projection.apply(Seen(domain_event, position), rows)
            rows.flush(curs)
        assert view_digest(projection.view) == expected
