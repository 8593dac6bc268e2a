"""``ledger booking ...``: publish a slot schedule, see it in the calendar, refuse bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.cli import main

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_a_published_schedule_shows_in_the_calendar(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    first = datetime.now(UTC).date() + timedelta(days=1)
    schedule = {
        "version": "cli-1",
        "effective_from": first.isoformat(),
        "weekdays": {d: {"08:00": 3} for d in WEEKDAYS},
        "holidays": {(first + timedelta(days=1)).isoformat(): {}},
    }
    path = cli_env / "schedule.json"
    path.write_text(json.dumps(schedule))
    assert main(["booking", "schedule", str(path)]) == 0
    capsys.readouterr()
    assert main(["booking", "calendar", "--from", first.isoformat(), "--days", "3", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    days = [(s["day"], s["start"], s["capacity"], s["schedule_version"]) for s in shown]
    assert days == [  # the holiday in between is closed
        (first.isoformat(), "08:00", 3, "cli-1"),
        ((first + timedelta(days=2)).isoformat(), "08:00", 3, "cli-1"),
    ]


def test_the_same_schedule_version_twice_exits_2(cli_env: Path) -> None:
    assert main(["init"]) == 0
    path = cli_env / "schedule.json"
    path.write_text(json.dumps({"version": "v", "effective_from": "2020-01-01",
                                "weekdays": {d: {} for d in WEEKDAYS}}))  # fmt: skip
    assert main(["booking", "schedule", str(path)]) == 0
    assert main(["booking", "schedule", str(path)]) == 2


def test_an_unknown_appointment_no_show_exits_2(cli_env: Path) -> None:
    assert main(["init"]) == 0
    assert main(["booking", "no-show", "APT-NONE", "--staff", "C001"]) == 2
