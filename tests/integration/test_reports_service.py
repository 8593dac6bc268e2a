"""The report use cases (services/reports.py) through ``ledger report``: ``--json`` of every
report, the amendments report, naming a donation by number, visit reference or UUID (reports and
forms), and the evidence export (services/evidence.py) round trip.

One simulated day (30 donations, seed 5: 3 deferred, 2 amended) serves the module; the donors'
clear ID numbers and names are kept from the simulation so that a test can look for them.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from api.cli import main as ledger_main
from ledger.events import LedgerAggregate
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.timestamping import inclusion_evidence
from projections.eventtime import station_date
from services.demo import DemoDay
from services.forms import _evidence
from services.references import visit_reference
from services.reports import amendments_in
from services.settings import Settings
from services.station import Station
from tests.workflow import amend_argv


@dataclass(frozen=True)
class Day:
    root: Path
    #: (clear ID number, name) of every simulated donor.
    donors: tuple[tuple[str, str], ...]
    numbered: str  # a completed donation's number
    deferred: UUID  # a deferred donation (no number)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    root = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LEDGER_DB", f"sqlite:///{root / 'ledger.sqlite'}")
        env.setenv("LEDGER_HOME", str(root / "home"))
        env.setenv("LEDGER_PASSPHRASE", "test-only-passphrase")
        env.setenv("LEDGER_STATION_ID", "TEST-01")
        env.setenv("COLUMNS", "250")
        with Station.initialise(Settings()) as station:
            simulated = DemoDay(station, 5)
            simulated.run(30)
            station.stamper().flush()
            numbers = {i: station.app.donation(i).donation_no for i, _ in simulated.sealed}
        numbered = sorted(n for n in numbers.values() if n)
        deferred = [i for i, n in numbers.items() if not n]
        assert numbered and deferred, "seed 5 gives completed and deferred donations"
        donors = tuple((number, name) for number, name, _, _ in simulated.donors)
        yield Day(root, donors, numbered[0], deferred[0])


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    capsys.readouterr()
    assert ledger_main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out), out


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


TODAY = station_date(datetime.now(UTC))
EVER = ["--from", "2000-01-01", "--to", "2099-12-31"]


def _reports(day: Day) -> dict[str, list[str]]:
    deferred = visit_reference(day.deferred)
    return {
        "quality": ["report", "quality", *EVER, "--json"],
        "archive": ["report", "archive", "--json"],
        "amendments": ["report", "amendments", *EVER, "--json"],
        "donation": ["report", "donation", day.numbered, "--json"],
        "audit": ["report", "audit", day.numbered, "--json"],
        "donation (deferred)": ["report", "donation", deferred, "--json"],
        "audit (deferred)": ["report", "audit", deferred, "--json"],
    }


@pytest.mark.parametrize("name", list(_reports(Day(Path(), (), "", UUID(int=1)))))
def test_every_report_prints_json_with_masked_id_numbers_names_and_phones(
    day: Day, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    document, out = run_json(_reports(day)[name], capsys)
    assert document["report"] == name.split()[0] and document["version"] == 1
    for number, full_name in day.donors:
        assert number not in out, f"clear ID number {number} in the {name} report"
        assert f'"{full_name}"' not in out, f"full name {full_name} in the {name} report"
    # The demo's phone numbers are 11 digits starting 13; a clear one would appear as a value.
    assert not re.search(r'"13\d{9}"', out), f"clear phone number in the {name} report"
    values = list(_walk(document))
    masked = [v for k, v in values if k == "id_number_masked"]
    names = [v for k, v in values if k == "name"]
    phones = [v for k, v in values if k == "phone"]
    assert all(re.fullmatch(r"13\d\*{4}\d{4}", v) for v in phones), phones
    assert all(re.fullmatch(r"\d{6}\*{12}", v) for v in masked), masked
    assert all(re.fullmatch(r".\*+", v) for v in names), names
    if name.startswith(("donation", "archive")):
        assert masked and names  # the report shows a donor, so the checks above ran


def test_a_donation_is_named_by_number_visit_reference_or_uuid(
    day: Day, capsys: pytest.CaptureFixture[str]
) -> None:
    by_number, _ = run_json(["report", "donation", day.numbered, "--json"], capsys)
    donation = by_number["donation"]
    assert donation["label"] == donation["donation_no"] == day.numbered
    uuid = donation["donation_id"]
    for reference in (visit_reference(uuid), visit_reference(uuid).lower(), uuid):
        again, _ = run_json(["report", "audit", reference, "--json"], capsys)
        assert again["donation"] == donation


def test_a_deferred_donation_is_labelled_by_its_visit_reference(
    day: Day, capsys: pytest.CaptureFixture[str]
) -> None:
    document, _ = run_json(["report", "donation", str(day.deferred), "--json"], capsys)
    assert document["donation"]["donation_no"] == ""
    assert document["donation"]["label"] == visit_reference(day.deferred)
    assert document["final_status"] == "deferred"
    capsys.readouterr()
    assert ledger_main(["report", "audit", visit_reference(day.deferred)]) == 0
    assert f"Audit trail of donation {visit_reference(day.deferred)}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("garbage", "not a donation number"),
        ("V000000000000", "no donation with visit reference V000000000000"),
        ("0000000000000", "no donation with donation number 0000000000000"),
        (str(UUID(int=7)), f"no donation with UUID {UUID(int=7)}"),
    ],
)
def test_a_reference_that_is_garbage_or_names_nothing_exits_2(
    day: Day, reference: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ledger_main(["report", "donation", reference]) == 2
    assert says in capsys.readouterr().err
    assert ledger_main(["forms", reference, "--out", str(day.root / "no-forms")]) == 2
    assert says in capsys.readouterr().err
    assert not (day.root / "no-forms").exists()


def test_the_forms_of_a_deferred_donation_are_named_by_its_visit_reference(
    day: Day, capsys: pytest.CaptureFixture[str]
) -> None:
    out = day.root / "forms-deferred"
    reference = visit_reference(day.deferred)
    assert ledger_main(["forms", reference.lower(), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"{reference}-{k}.pdf" for k in ("collection", "consent", "registration")
    )
    assert str(day.deferred) not in capsys.readouterr().out


# -- the amendments report ------------------------------------------------------------------------


def _recorded_amendments(day: Day) -> int:
    with sqlite3.connect(day.root / "ledger.sqlite") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM stored_events WHERE topic LIKE '%Donation.RecordAmended'"
        ).fetchone()
    return int(count)


def test_the_amendments_report_lists_every_amendment_of_the_period(
    day: Day, capsys: pytest.CaptureFixture[str]
) -> None:
    record, _ = run_json(["report", "donation", day.numbered, "--json"], capsys)
    [exam] = [s for s in record["steps"] if s["step"] == "general_exam"]
    before = exam["values"]["temperature_c"]
    assert ledger_main(amend_argv(day.numbered, value="35.9", reason="thermometer re-read")) == 0
    period = ["--from", TODAY.isoformat(), "--to", TODAY.isoformat()]
    document, _ = run_json(["report", "amendments", *period, "--json"], capsys)
    rows = document["amendments"]
    assert len(rows) == _recorded_amendments(day) >= 3  # the day's 2 and this one
    assert [r["position"] for r in rows] == sorted(r["position"] for r in rows)
    mine = rows[-1]
    assert {k: mine[k] for k in ("donation", "step", "field", "reason", "overrides")} == {
        "donation": day.numbered,
        "step": "general_exam",
        "field": "temperature_c",
        "reason": "thermometer re-read",
        "overrides": {},
    }
    assert (mine["old_value"], mine["new_value"]) == (before, 35.9)
    assert mine["signer"].startswith("P001 ") and mine["actor_role"] == "examining_physician"
    capsys.readouterr()
    assert ledger_main(["report", "amendments", *period]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "thermometer re-read" in text and f"{before} -> 35.9" in text and day.numbered in text


def test_amendments_outside_the_period_are_left_out(
    day: Day, capsys: pytest.CaptureFixture[str]
) -> None:
    for first, last in (
        (TODAY - timedelta(days=30), TODAY - timedelta(days=1)),
        (TODAY + timedelta(days=1), TODAY + timedelta(days=1)),
    ):
        argv = ["report", "amendments", "--from", str(first), "--to", str(last), "--json"]
        document, _ = run_json(argv, capsys)
        assert document["amendments"] == [], (first, last)
    assert ledger_main(["report", "amendments", "--from", str(TODAY), "--to", "2000-01-01"]) == 2
    assert "before" in capsys.readouterr().err


def _trail(donation_id: str, number: str, *amendments: tuple[int, str]) -> dict[str, Any]:
    return {
        "donation_id": donation_id,
        "donation_no": number,
        "steps": {
            "general_exam": {
                "amendments": [
                    {"position": position, "recorded_at": at, "field": "temperature_c"}
                    for position, at in amendments
                ]
            }
        },
    }


def test_the_period_is_in_station_days_and_rows_come_in_log_order() -> None:
    deferred = str(UUID(int=2))
    trails = [
        _trail(str(UUID(int=1)), "9000626000001", (40, "2026-12-05T16:00:00+00:00")),
        _trail(deferred, "", (12, "2026-12-06T15:59:59+00:00"), (7, "2026-12-05T15:59:59+00:00")),
    ]
    found = amendments_in(trails, date(2026, 12, 6), date(2026, 12, 6))
    # 16:00 UTC on the 5th is midnight of the 6th at the station (UTC+8); 15:59:59 is the 5th
    assert [(label, a["position"]) for label, _, _, a in found] == [
        (visit_reference(deferred), 12),
        ("9000626000001", 40),
    ]
    assert [
        a["position"] for *_, a in amendments_in(trails, date(2026, 12, 5), date(2026, 12, 5))
    ] == [7]


# -- evidence export ------------------------------------------------------------------------------


def test_an_exported_event_round_trips(day: Day, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(day.root / "ledger.sqlite") as db:
        (position,) = db.execute(
            "SELECT min(rowid) FROM stored_events WHERE topic LIKE '%GeneralExamRecorded'"
        ).fetchone()
    out = day.root / "evidence"
    assert ledger_main(["export-event", str(position), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["event.json", "sig.p7s", "chain.pem", "evidence.json", "token.tsr", "batch_root.hex"]
    )
    meta = json.loads((out / "evidence.json").read_text(encoding="utf-8"))
    assert (meta["format"], meta["format_version"]) == ("donation-ledger/event-evidence", 1)
    assert meta["position"] == position and meta["event_type"] == "GeneralExamRecorded"
    body = (out / "event.json").read_bytes()
    assert hashlib.sha256(body).hexdigest() == meta["event_hash"]
    assert json.loads(body)["aggregate_id"] == meta["aggregate_id"]
    timing = meta["trusted_time"]
    assert timing["status"] == "stamped"
    assert (out / "batch_root.hex").read_text().strip() == timing["batch_root"]
    verify_inclusion(
        timing["leaf_index"],
        timing["batch_size"],
        leaf_hash(bytes.fromhex(meta["event_hash"])),
        [bytes.fromhex(h) for h in timing["inclusion_path"]],
        bytes.fromhex(timing["batch_root"]),
    )
    # the forms attach the same inclusion path (one function builds both)
    with Station.open(Settings()) as station:
        event = station.app.mapper.to_domain_event(
            station.app.recorder.select_notifications(position, 1)[0]
        )
        assert isinstance(event, LedgerAggregate.Event)
        batches = list(station.store.select_batches())
        attached = _evidence(position, event, batches, station)
        direct = inclusion_evidence(station.store, position)
    assert direct is not None
    assert list(attached.path) == timing["inclusion_path"] == [h.hex() for h in direct.path]
    assert attached.leaf_index == timing["leaf_index"] == direct.index
