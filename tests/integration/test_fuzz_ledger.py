"""Fuzzing with hypothesis: the event decoder inside `ledger verify` (stored states mutated as
raw bytes and as decoded JSON fields) always gives a verdict, never an exception; the `ledger`
command line, given random commands and values, exits 0, 1, 2 or 3, never 70 (a bug) or with a
traceback. Each test prints how many examples it tried and what came out."""

from __future__ import annotations

import os
import string
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.cli import main
from ledger.report import Verdict
from services.station import Station
from services.verification import verify_station
from tests.conftest import make_settings
from tests.tamper import Tamperer
from tests.unit.ledger.test_amendments import _decode, _encode
from tests.workflow import complete

OUTCOMES: dict[str, Counter[str]] = {"state bytes": Counter(), "state fields": Counter()}
CLI_OUTCOMES: Counter[int] = Counter()
SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
STATE_EXAMPLES = int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "30"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Station, Tamperer]]:
    tmp = tmp_path_factory.mktemp("fuzz-ledger")
    station = Station.initialise(make_settings(tmp / "home", f"sqlite:///{tmp / 'l.sqlite'}"))
    complete(station)
    station.stamper().flush()
    tamperer = Tamperer(station)
    try:
        yield station, tamperer
    finally:
        tamperer.close()
        station.close()
        for kind, seen in OUTCOMES.items():
            print(f"\nfuzz event decoder ({kind}): {sum(seen.values())} examples, {dict(seen)}")


def _verdict(station: Station) -> Verdict:
    report = verify_station(station, now=datetime.now(UTC) + timedelta(minutes=5))
    return report.verdict


def _with_state(tamperer: Tamperer, position: int, state: bytes) -> Verdict:
    row = tamperer._row(position)
    original = bytes(row["state"])
    tamperer.db.run("UPDATE {events} SET state = ? WHERE {id} = ?", (state, position))
    try:
        return _verdict(tamperer.station)
    finally:
        tamperer.db.run("UPDATE {events} SET state = ? WHERE {id} = ?", (original, position))


@settings(
    max_examples=int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=SLOW,
)
@given(data=st.data())
def test_mutated_state_bytes_always_get_a_verdict(
    data: st.DataObject, ledger: tuple[Station, Tamperer]
) -> None:
    _station, tamperer = ledger
    position = data.draw(st.sampled_from(tamperer.positions()))
    state = bytearray(tamperer._row(position)["state"])
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(state) - 1))
        state[where : where + 1] = data.draw(st.binary(max_size=3))
    verdict = _with_state(tamperer, position, bytes(state))
    assert verdict in (Verdict.PASSED, Verdict.FAILED, Verdict.INDETERMINATE)
    OUTCOMES["state bytes"][verdict.value] += 1


@settings(
    max_examples=int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=SLOW,
)
@given(data=st.data())
def test_mutated_state_fields_always_get_a_verdict(
    data: st.DataObject, ledger: tuple[Station, Tamperer]
) -> None:
    station, tamperer = ledger
    mapper = station.app.mapper
    position = data.draw(st.sampled_from(tamperer.positions()))
    state: dict[str, Any] = _decode(mapper, bytes(tamperer._row(position)["state"]))
    key = data.draw(st.sampled_from(sorted(state)) | st.text(max_size=8))
    if data.draw(st.booleans()) and key in state:
        del state[key]
    else:
        state[key] = data.draw(json_values)
    try:
        encoded = _encode(mapper, state)
    except (TypeError, ValueError):  # the transcoder refuses the value: nothing to store
        return
    verdict = _with_state(tamperer, position, encoded)
    assert verdict in (Verdict.PASSED, Verdict.FAILED, Verdict.INDETERMINATE)
    OUTCOMES["state fields"][verdict.value] += 1


# -- the command line -----------------------------------------------------------------------------

COMMANDS = (
    ("verify",),
    ("verify", "--json"),
    ("verify", "--since"),
    ("verify", "--witness"),
    ("checkpoint", "--out"),
    ("amend",),
    ("revoke",),
    ("station", "set"),
    ("station", "show"),
    ("export-event",),
    ("export-event", "--out"),
    ("forms",),
    ("verify-pdf",),
    ("verify-pdf", "--trust"),
    ("report", "donation"),
    ("report", "audit"),
    ("report", "quality", "--from"),
    ("keys", "rewrap"),
    ("no-such-command",),
    (),
)
ARG_WORDS = st.one_of(
    st.text(alphabet=string.printable, max_size=15),
    st.text(max_size=8),
    st.sampled_from(
        [
            "9000626123456",
            "0",
            "-1",
            "99999999999999999999",
            "--step",
            "general_exam",
            "--field",
            "temperature_c",
            "--value",
            "nan",
            "--reason",
            "x",
            "--staff",
            "P001",
            "--json",
            "/dev/null",
            "/nonexistent/file",
            "{}",
            "[1,2",
            "",
            "--help-not",
        ]
    ),
)


@pytest.fixture(scope="module")
def cli_home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-cli-") as tmp:
        env = {
            "LEDGER_DB": f"sqlite:///{Path(tmp) / 'ledger.sqlite'}",
            "LEDGER_HOME": str(Path(tmp) / "home"),
            "LEDGER_PASSPHRASE": "test-only-passphrase",
            "LEDGER_STATION_ID": "TEST-01",
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        cwd = os.getcwd()
        os.chdir(tmp)  # relative paths the fuzzer writes (`checkpoint --out x`) land here
        try:
            assert main(["init"]) == 0
            yield Path(tmp)
        finally:
            os.chdir(cwd)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            print(
                f"\nfuzz ledger CLI: {sum(CLI_OUTCOMES.values())} argvs, exits {dict(CLI_OUTCOMES)}"
            )


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW)
@given(command=st.sampled_from(COMMANDS), words=st.lists(ARG_WORDS, max_size=5))
def test_random_command_lines_exit_0_1_2_or_3(
    command: tuple[str, ...],
    words: list[str],
    cli_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [*command, *words]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    CLI_OUTCOMES[code] += 1
    assert code in (0, 1, 2, 3), (argv, code, captured.err[-2000:])
    assert "Traceback" not in captured.err, (argv, captured.err[-2000:])
    if code == 2 and captured.err.strip() and not captured.err.startswith("usage:"):
        # a one-line reason (argparse's usage text is its own shape)
        assert "usage:" in captured.err or captured.err.strip().count("\n") <= 1, captured.err


@pytest.mark.parametrize("change", ["delete", None, 7, ["a"]])
def test_an_event_hash_that_is_not_text_is_undecodable_not_a_crash(
    change: Any, ledger: tuple[Station, Tamperer]
) -> None:
    """Found by the fuzzer: verify raised (exit 70) when a state's event_hash was missing or not
    text; it is now the finding EVENT_UNDECODABLE at that event."""
    station, tamperer = ledger
    mapper = station.app.mapper
    position = tamperer.positions()[2]
    row = tamperer._row(position)
    original = bytes(row["state"])
    state: dict[str, Any] = _decode(mapper, original)
    if change == "delete":
        del state["event_hash"]
    else:
        state["event_hash"] = change
    tamperer.db.run(
        "UPDATE {events} SET state = ? WHERE {id} = ?", (_encode(mapper, state), position)
    )
    try:
        report = verify_station(station, now=datetime.now(UTC) + timedelta(minutes=5))
    finally:
        tamperer.db.run("UPDATE {events} SET state = ? WHERE {id} = ?", (original, position))
    assert report.verdict is Verdict.FAILED
    first = report.issues()[0]
    assert first.code == "EVENT_UNDECODABLE" and "event_hash" in first.message, first
