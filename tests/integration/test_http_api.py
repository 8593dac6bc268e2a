"""The HTTP API and pages (`ledger serve`): login, roles, the station API, idempotency,
verification, and a matrix of every route x every role x no credentials."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.web import create_app, pages, pages_archive, routes
from projections.eventtime import station_date, station_today
from services import users, web_reads
from services.amend import AmendRecord, amend_record
from services.booking import QUESTIONNAIRE
from services.settings import Settings
from services.station import Station
from tests import pdf_attacks
from tests.conftest import make_settings
from tests.pdf_samples import evidence_attachments, genuine_form, make_station, unsigned_form
from tests.tamper import Tamperer
from tests.unit.services.test_steps import EXAM, registered, through_collection
from tests.workflow import make_id

logging.getLogger("pyhanko").setLevel(logging.CRITICAL)

PASSWORD = "correct horse battery"
#: (user, role, staff id)
USERS = (
    ("nurse", "staff", "N001"),
    ("physician", "staff", "P001"),
    ("clerk", "staff", "C001"),
    ("quality", "quality", "Q001"),
    ("archivist", "archivist", "R001"),
    ("regulator", "regulator", None),
    ("admin", "admin", "A001"),
    ("channel", "channel", None),
    ("recruiter", "staff", "Z001"),
    ("lab", "staff", "T001"),
)
ROLE_USER = {"staff": "physician", **{r: u for u, r, _ in USERS if r != "staff"}}
NUMBER = "9000626100001"


@dataclass
class Web:
    app: FastAPI
    settings: Settings
    station: Station
    tokens: dict[str, str]
    pdfs: dict[str, bytes]

    def client(self) -> TestClient:
        return TestClient(self.app)

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[ROLE_USER[role]]}"}


def add_users(settings: Settings) -> None:
    store = users.UserStore(settings.db)
    for name, role, staff_id in USERS:
        users.add_user(store, users.AddUser(name, role, PASSWORD, staff_id), lambda _: True)


def login(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/token", data={"username": name, "password": password})


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    tmp = tmp_path_factory.mktemp("web")
    settings = make_settings(tmp / "home", f"sqlite:///{tmp / 'ledger.sqlite'}")
    Station.initialise(settings).close()
    add_users(settings)
    sample = make_station(tmp / "sample" / "pki")
    genuine = genuine_form(sample, unsigned_form(attachments=evidence_attachments(sample)))
    pdfs = {
        "genuine": genuine,
        "attacked": pdf_attacks.isa_content_appended(genuine),
        "root": sample.root_pem(),
    }
    app = create_app(settings)
    with TestClient(app) as client:
        station: Station = app.state.ctx.station
        donation_id = registered(station, sequence=3)
        through_collection(station, donation_id, NUMBER)
        tokens = {name: login(client, name).json()["access_token"] for name, _, _ in USERS}
        yield Web(app, settings, station, tokens, pdfs)


def events(web: Web) -> int:
    return int(web.station.app.recorder.max_notification_id() or 0)


# -- auth ----------------------------------------------------------------------------------------


def test_a_token_is_issued_for_the_right_password(web: Web) -> None:
    answer = login(web.client(), "regulator")
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and len(body["access_token"]) > 30
    me = web.client().get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {"username": "regulator", "role": "regulator", "staff_id": None}


def test_a_wrong_password_is_401_and_recorded(web: Web) -> None:
    answer = login(web.client(), "admin", "wrong password!")
    assert answer.status_code == 401
    assert answer.json() == {"detail": "wrong user name or password"}
    attempts = users.UserStore(web.settings.db).attempts("admin")
    assert attempts[-1][1] is False


def test_repeated_failures_lock_the_account_even_for_the_right_password(web: Web) -> None:
    store = users.UserStore(web.settings.db)
    users.add_user(store, users.AddUser("victim", "regulator", PASSWORD), lambda _: True)
    client = web.client()
    for _ in range(users.MAX_FAILURES):
        assert login(client, "victim", "guess guess guess").status_code == 401
    locked = login(client, "victim")
    assert locked.status_code == 401
    assert "locked until" in locked.json()["detail"]


def test_an_unknown_token_is_401(web: Web) -> None:
    answer = web.client().get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_logout_ends_the_token(web: Web) -> None:
    client = web.client()
    token = login(client, "archivist").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


# -- station API -------------------------------------------------------------------------------


def test_the_donation_is_masked(web: Web) -> None:
    answer = web.client().get(f"/api/v1/donations/{NUMBER}", headers=web.bearer("staff"))
    assert answer.status_code == 200
    registration = answer.json()["steps"]["registration"]["values"]
    assert registration["phone"] == "138****0000"
    assert registration["name"] == "张*"
    assert re.fullmatch(r"\d{6}\*{12}", registration["id_number_masked"])
    assert "donor_ref" not in registration
    assert "13800000000" not in answer.text


def test_a_step_is_recorded_signed_by_the_logged_in_staff_member(web: Web) -> None:
    client = web.client()
    donation_id = registered(web.station, sequence=11)
    consent = {"answers": {"recent_illness": False}, "consent": True, "fingerprint_verified": True}
    url = f"/api/v1/donations/{donation_id}/steps"
    nurse = {"Authorization": f"Bearer {web.tokens['nurse']}"}
    assert client.post(f"{url}/informed_consent", json=consent, headers=nurse).status_code == 201
    answer = client.post(f"{url}/general_exam", json=EXAM, headers=web.bearer("staff"))
    assert answer.status_code == 201, answer.text
    assert answer.json()["rule_outcomes"]
    exam = web.station.app.donation(donation_id).steps["general_exam"]
    assert exam["actor"] == "STAFF:P001"  # the physician's own certificate


def test_registration_by_a_role_that_may_not_register_is_409_and_writes_nothing(
    web: Web,
) -> None:
    birth = date(1991, 1, 2)
    body = {"id_number": make_id(birth, "F", sequence=61), "name": "钱八", "sex": "F",
            "birth_date": birth.isoformat(), "phone": "13800000000",
            "product": "platelets_single"}  # fmt: skip
    before = events(web)
    nurse = {"Authorization": f"Bearer {web.tokens['nurse']}"}
    refused = web.client().post("/api/v1/donations", json=body, headers=nurse)
    assert refused.status_code == 409 and "registration_clerk" in refused.json()["detail"]
    assert events(web) == before
    clerk = {"Authorization": f"Bearer {web.tokens['clerk']}"}
    done = web.client().post("/api/v1/donations", json=body, headers=clerk)
    assert done.status_code == 201, done.text
    bad = web.client().post(
        "/api/v1/donations", json={**body, "sex": "M"}, headers=clerk
    )  # the ID number says female
    assert bad.status_code == 400 and bad.json()["detail"].startswith("ID number")


def test_a_step_the_signers_role_may_not_record_is_409_and_writes_nothing(web: Web) -> None:
    donation_id = registered(web.station, sequence=12)
    before = events(web)
    nurse = {"Authorization": f"Bearer {web.tokens['nurse']}"}
    answer = web.client().post(
        f"/api/v1/donations/{donation_id}/steps/general_exam", json=EXAM, headers=nurse
    )
    assert answer.status_code == 409
    assert "\n" not in answer.json()["detail"]
    assert events(web) == before


@pytest.mark.parametrize(
    ("step", "payload", "status"),
    [
        ("general_exam", {**EXAM, "weight_kg": "heavy"}, 400),
        ("general_exam", {"weight_kg": 60}, 400),
        ("dance", {}, 400),
    ],
    ids=["wrong-type", "missing-fields", "unknown-step"],
)
def test_bad_input_is_4xx_one_line_and_writes_nothing(
    web: Web, step: str, payload: dict[str, Any], status: int
) -> None:
    before = events(web)
    answer = web.client().post(
        f"/api/v1/donations/{NUMBER}/steps/{step}", json=payload, headers=web.bearer("staff")
    )
    assert answer.status_code == status
    assert "\n" not in answer.json()["detail"]
    assert events(web) == before


def test_a_donor_is_looked_up_by_id_number_and_shown_masked(web: Web) -> None:
    birth = date(1985, 3, 4)  # as `registered` has it
    id_number = make_id(birth, "F", sequence=71)
    donation_id = registered(web.station, sequence=71)
    client = web.client()
    answer = client.post(
        "/api/v1/donors/lookup", json={"id_number": id_number}, headers=web.bearer("staff")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id_number_masked"] == id_number[:6] + "*" * 12 and id_number not in answer.text
    assert body["name"] == "张*" and body["birth_year"] == "1985"
    assert [v["donation_id"] for v in body["visits"]] == [str(donation_id)]
    other = make_id(birth, "F", sequence=72)
    unknown = client.post(
        "/api/v1/donors/lookup", json={"id_number": other}, headers=web.bearer("staff")
    )
    assert unknown.status_code == 404
    bad = client.post(
        "/api/v1/donors/lookup", json={"id_number": "12345"}, headers=web.bearer("staff")
    )
    assert bad.status_code == 400


def test_an_unknown_donation_is_404(web: Web) -> None:
    answer = web.client().get("/api/v1/donations/9000626999999", headers=web.bearer("staff"))
    assert answer.status_code == 404


def test_a_retry_with_the_same_idempotency_key_records_once(web: Web) -> None:
    client = web.client()
    donation_id = registered(web.station, sequence=13)
    consent = {"answers": {}, "consent": True, "fingerprint_verified": True}
    url = f"/api/v1/donations/{donation_id}/steps/informed_consent"
    headers = {**web.bearer("staff"), "Idempotency-Key": f"consent-{donation_id}"}
    first = client.post(url, json=consent, headers=headers)
    after_first = events(web)
    second = client.post(url, json=consent, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert events(web) == after_first
    changed = client.post(url, json={**consent, "consent": False}, headers=headers)
    assert changed.status_code == 409


def test_concurrent_retries_with_one_idempotency_key_record_once(web: Web) -> None:
    donation_id = registered(web.station, sequence=16)
    consent = {"answers": {}, "consent": True, "fingerprint_verified": True}
    url = f"/api/v1/donations/{donation_id}/steps/informed_consent"
    headers = {**web.bearer("staff"), "Idempotency-Key": f"race-{donation_id}"}
    before = events(web)

    def send(_: int) -> int:
        return int(web.client().post(url, json=consent, headers=headers).status_code)

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(send, range(8)))
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    steps_ = web.station.app.donation(donation_id).steps
    assert "informed_consent" in steps_
    # one consent: the donor's certificate issuance and the consent event, once
    assert events(web) - before == 2


def test_an_amendment_keeps_the_prior_value_in_the_audit(web: Web) -> None:
    client = web.client()
    body = {"step": "general_exam", "field": "pulse_per_min", "new_value": 74, "reason": "typo"}
    answer = client.post(
        f"/api/v1/donations/{NUMBER}/amendments", json=body, headers=web.bearer("staff")
    )
    assert answer.status_code == 201, answer.text
    assert (answer.json()["old_value"], answer.json()["new_value"]) == (72, 74)
    audit = client.get(
        "/api/v1/quality/amendments", params={"staff": "P001"}, headers=web.bearer("quality")
    )
    rows = [r for r in audit.json() if r["field"] == "pulse_per_min"]
    assert rows and rows[-1]["old_value"] == 72 and rows[-1]["new_value"] == 74
    csv = client.get("/api/v1/quality/amendments.csv", headers=web.bearer("quality"))
    assert "pulse_per_min,72,74,P001" in csv.text


def test_an_amended_phone_number_stays_masked_in_the_record_and_the_audit(web: Web) -> None:
    donation_id = registered(web.station, sequence=15)
    clerk = {"Authorization": f"Bearer {web.tokens['clerk']}"}
    body = {"step": "registration", "field": "phone", "new_value": "13911112222",
            "reason": "donor's new number"}  # fmt: skip
    client = web.client()
    answer = client.post(f"/api/v1/donations/{donation_id}/amendments", json=body, headers=clerk)
    assert answer.status_code == 201, answer.text
    record = client.get(f"/api/v1/donations/{donation_id}", headers=web.bearer("staff"))
    audit = client.get("/api/v1/quality/amendments", headers=web.bearer("quality"))
    page = client.get("/api/v1/quality/amendments.csv", headers=web.bearer("quality"))
    for text in (answer.text, record.text, audit.text, page.text):
        assert "13911112222" not in text and "13800000000" not in text
    assert record.json()["amendments"][-1]["new_value"] == "139****2222"


def test_an_amendment_without_reason_is_422_and_writes_nothing(web: Web) -> None:
    before = events(web)
    body = {"step": "general_exam", "field": "pulse_per_min", "new_value": 75, "reason": ""}
    answer = web.client().post(
        f"/api/v1/donations/{NUMBER}/amendments", json=body, headers=web.bearer("staff")
    )
    assert answer.status_code == 422
    assert events(web) == before


def test_the_monthly_rates_count_the_amended_donation(web: Web) -> None:
    amend_record(
        web.station,
        AmendRecord(NUMBER, "general_exam", "temperature_c", 36.7, "rates test", "P001"),
    )
    answer = web.client().get("/api/v1/quality/rates", headers=web.bearer("quality"))
    assert answer.status_code == 200
    rates = {r["metric"]: r for r in answer.json()["rates"]}
    modified = rates["record_modification_rate"]
    assert modified["numerator"] >= 1 and modified["denominator"] >= modified["numerator"]
    month = station_date(datetime.now(UTC)).strftime("%Y-%m")  # the metrics count station days
    assert any(m["month"] == month and m["numerator"] >= 1 for m in modified["by_month"])
    csv = web.client().get("/api/v1/quality/rates.csv", headers=web.bearer("quality"))
    assert csv.text.startswith("metric,title,month,numerator,denominator,rate")
    assert "record_modification_rate" in csv.text


def test_the_administrator_changes_a_setting_signed_with_their_certificate(web: Web) -> None:
    body = {"key": "mpv_enabled", "value": True, "reason": "analyser upgrade"}
    answer = web.client().post("/api/v1/station/settings", json=body, headers=web.bearer("admin"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"key": "mpv_enabled", "old_value": False, "new_value": True}
    assert web.station.app.station().parameters["mpv_enabled"] is True
    wrong = {"key": "mpv_enabled", "value": "yes", "reason": "x"}
    refused = web.client().post("/api/v1/station/settings", json=wrong, headers=web.bearer("admin"))
    assert refused.status_code == 400


def test_a_revoked_staff_member_can_sign_no_more(web: Web) -> None:
    store = users.UserStore(web.settings.db)
    users.add_user(store, users.AddUser("nurse2", "staff", PASSWORD, "N002"), lambda _: True)
    client = web.client()
    nurse2 = {"Authorization": f"Bearer {login(client, 'nurse2').json()['access_token']}"}
    answer = client.post(
        "/api/v1/staff/N002/revoke", json={"reason": "left"}, headers=web.bearer("admin")
    )
    assert answer.status_code == 200, answer.text
    donation_id = registered(web.station, sequence=14)
    before = events(web)
    reaction = {"reaction_type": "vasovagal", "severity": "mild", "onset_at": "2026-12-06T08:00",
                "treatment": "", "outcome": "recovered"}  # fmt: skip
    refused = client.post(
        f"/api/v1/donations/{donation_id}/steps/adverse_reaction", json=reaction, headers=nurse2
    )
    assert refused.status_code == 409 and "revoked" in refused.json()["detail"]
    assert events(web) == before


def test_a_channel_books_pre_registers_and_the_clerk_confirms(web: Web) -> None:
    client = web.client()
    birth = date(1990, 2, 3)
    id_number = make_id(birth, "M", sequence=88)
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    booked = client.post(
        "/api/v1/channel/appointments",
        json={"channel": "baidu", "id_number": id_number, "sex": "M",
              "birth_date": birth.isoformat(), "day": day},
        headers=web.bearer("channel"),
    )  # fmt: skip
    assert booked.status_code == 201, booked.text
    assert id_number not in booked.text
    appointment = booked.json()["appointment_id"]
    answers = dict.fromkeys(QUESTIONNAIRE, False)
    sent = client.post(
        "/api/v1/channel/preregistrations",
        json={"channel": "baidu", "id_number": id_number, "name": "赵六", "sex": "M",
              "birth_date": birth.isoformat(), "phone": "13700001111",
              "product": "platelets_single", "answers": answers,
              "appointment_id": appointment},
        headers=web.bearer("channel"),
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    prereg = sent.json()["prereg_id"]
    pending = client.get("/api/v1/preregistrations", headers=web.bearer("staff")).json()
    assert [p["phone"] for p in pending if p["prereg_id"] == prereg] == ["137****1111"]
    clerk = {"Authorization": f"Bearer {web.tokens['clerk']}"}
    done = client.post(f"/api/v1/preregistrations/{prereg}/confirm", headers=clerk)
    assert done.status_code == 200, done.text
    donation = web.station.app.donation(UUID(done.json()["donation_id"]))
    assert donation.steps["registration"]["values"]["channel"] == "baidu"
    assert donation.steps["registration"]["values"]["appointment_id"] == appointment


def test_the_timeline_checks_each_event_of_the_donation(web: Web) -> None:
    answer = web.client().get(
        f"/api/v1/donations/{NUMBER}/timeline", headers=web.bearer("regulator")
    )
    assert answer.status_code == 200
    events_ = answer.json()["events"]
    assert events_[0]["event_type"] == "DonorRegistered" and events_[0]["actor"] == "STAFF:C001"
    assert [e["version"] for e in events_] == list(range(1, len(events_) + 1))
    assert all(e["state"] == "ok" and e["position"] for e in events_), events_


def test_the_timeline_shows_a_tampered_event_as_failed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with Station.initialise(settings) as station:
        donation_id = registered(station, sequence=51)
        through_collection(station, donation_id, "9000626300001")
        tamperer = Tamperer(station)
        position = tamperer.find("GeneralExamRecorded")
        event = tamperer.event_at(position)
        tamperer.write_event(position, tamperer.replace(event, temperature_c=35.0))
        tamperer.close()
    with Station.open(settings) as station:
        timeline = web_reads.donation_timeline(station, "9000626300001")
    failed = [e for e in timeline["events"] if e["state"] == "FAILED"]
    assert [e["position"] for e in failed] == [position]
    assert "hash" in " ".join(failed[0]["problems"])


# -- regulator -----------------------------------------------------------------------------------


def _verify(web: Web, name: str, role: str = "regulator") -> Any:
    files = {
        "file": (f"{name}.pdf", web.pdfs[name], "application/pdf"),
        "trust": ("root.pem", web.pdfs["root"], "application/x-pem-file"),
    }
    return web.client().post("/api/v1/verify/pdf", files=files, headers=web.bearer(role))


def test_the_regulator_gets_passed_for_an_untouched_form(web: Web) -> None:
    answer = _verify(web, "genuine")
    assert answer.status_code == 200, answer.text
    assert answer.json()["verdict"] == "PASSED"


def test_the_regulator_gets_failed_for_a_modified_form(web: Web) -> None:
    answer = _verify(web, "attacked")
    assert answer.status_code == 200
    assert answer.json()["verdict"] == "FAILED"
    assert answer.json()["findings"]


def test_a_file_that_is_no_pdf_is_422(web: Web) -> None:
    files = {"file": ("x.pdf", b"just text", "application/pdf")}
    answer = web.client().post("/api/v1/verify/pdf", files=files, headers=web.bearer("regulator"))
    assert answer.status_code == 422


def test_the_regulator_token_gets_403_on_the_station_api(web: Web) -> None:
    answer = web.client().post(
        f"/api/v1/donations/{NUMBER}/steps/general_exam", json=EXAM, headers=web.bearer("regulator")
    )
    assert answer.status_code == 403


def test_the_ledger_verifies_over_the_api(web: Web) -> None:
    answer = web.client().get("/api/v1/verify/ledger", headers=web.bearer("regulator"))
    assert answer.status_code == 200
    assert answer.json()["verdict"] in ("PASSED", "INDETERMINATE")  # no stamper in this test


# -- every route x every role ----------------------------------------------------------------

ALL = ("staff", "quality", "archivist", "regulator", "admin", "channel")
READERS = ("staff", "quality", "archivist", "regulator")
VERIFIERS = ("regulator", "quality", "archivist")

#: (method, path, roles allowed) for the API; written here, not read from the app.
API_MATRIX: list[tuple[str, str, tuple[str, ...]]] = [
    ("GET", "/api/v1/me", ALL),
    ("POST", "/api/v1/donations", ("staff",)),
    ("GET", f"/api/v1/donations/{NUMBER}", READERS),
    ("POST", "/api/v1/donors/lookup", ("staff",)),
    ("GET", f"/api/v1/donations/{NUMBER}/timeline", READERS),
    ("POST", f"/api/v1/donations/{NUMBER}/steps/heat_seal", ("staff",)),
    ("POST", f"/api/v1/donations/{NUMBER}/amendments", ("staff", "quality")),
    ("GET", "/api/v1/quality/amendments", ("quality",)),
    ("GET", "/api/v1/quality/amendments.csv", ("quality",)),
    ("GET", "/api/v1/quality/missing-signatures", ("quality",)),
    ("GET", "/api/v1/quality/rates", ("quality",)),
    ("GET", "/api/v1/quality/rates.csv", ("quality",)),
    ("GET", "/api/v1/archive/queue", ("archivist",)),
    ("GET", "/api/v1/archive/preview?from_date=2026-01-01&to_date=2026-01-31", ("archivist",)),
    ("POST", "/api/v1/archive/jobs", ("archivist",)),
    ("GET", "/api/v1/archive/jobs/JOB-X", ("archivist",)),
    ("GET", "/api/v1/archive/packages", ("archivist", "quality")),
    ("GET", "/api/v1/archive/packages/PKG-X/download", ("archivist", "quality")),
    ("GET", "/api/v1/archive/packages/PKG-X/receipt", ("archivist", "quality")),
    ("POST", "/api/v1/archive/packages/PKG-X/verify", ("archivist", "quality")),
    ("POST", "/api/v1/verify/package", VERIFIERS),
    ("POST", "/api/v1/verify/pdf", VERIFIERS),
    ("GET", "/api/v1/verify/ledger", ("regulator", "quality")),
    ("GET", "/api/v1/users", ("admin",)),
    ("POST", "/api/v1/users", ("admin",)),
    ("GET", "/api/v1/station/settings", ("admin",)),
    ("POST", "/api/v1/station/settings", ("admin",)),
    ("POST", "/api/v1/staff/X999/revoke", ("admin",)),
    ("POST", "/api/v1/channel/appointments", ("channel",)),
    ("POST", "/api/v1/channel/appointments/APT-X/cancel", ("channel",)),
    ("POST", "/api/v1/channel/preregistrations", ("channel",)),
    ("GET", "/api/v1/preregistrations", ("staff",)),
    ("POST", "/api/v1/preregistrations/PRE-X/confirm", ("staff",)),
    ("GET", "/api/v1/booking/calendar", ("staff", "channel")),
    ("POST", "/api/v1/booking/schedules", ("admin",)),
    ("POST", "/api/v1/appointments/APT-X/no-show", ("staff",)),
    ("GET", "/api/v1/booking/reminders", ("channel",)),
    ("POST", "/api/v1/booking/reminders/MSG-X/sent", ("channel",)),
    ("POST", "/api/v1/recruitment/contacts", ("staff",)),
    ("GET", "/api/v1/recruitment/statistics", ("staff", "quality")),
    ("GET", "/api/v1/recruitment/recruitable", ("staff",)),
    ("POST", "/api/v1/recruitment/match-requests", ("staff",)),
    ("GET", "/api/v1/recruitment/match-requests", ("staff",)),
    ("GET", "/api/v1/recruitment/match-requests/REQ-X/donors", ("staff",)),
    ("POST", "/api/v1/recruitment/typings", ("staff",)),
    ("GET", "/api/v1/booking/report", ("staff", "quality")),
]
#: Routes outside the matrix, tested above: the token endpoint (public) and logout.
NOT_IN_MATRIX = {("POST", "/api/v1/auth/token"), ("POST", "/api/v1/auth/logout")}

PAGE_MATRIX: list[tuple[str, str, tuple[str, ...]]] = [
    ("GET", "/staff", ("staff",)),
    ("POST", "/staff/donors/lookup", ("staff",)),
    ("GET", f"/staff/donations/{NUMBER}", READERS),
    ("GET", f"/staff/donations/{NUMBER}/timeline", READERS),
    ("GET", f"/regulator/donation?donation={NUMBER}", VERIFIERS),
    ("GET", f"/staff/donations/{NUMBER}/steps/heat_seal", ("staff",)),
    ("POST", f"/staff/donations/{NUMBER}/steps/heat_seal", ("staff",)),
    ("GET", f"/staff/donations/{NUMBER}/amend", ("staff", "quality")),
    ("POST", f"/staff/donations/{NUMBER}/amend", ("staff", "quality")),
    ("GET", "/quality", ("quality",)),
    ("GET", "/quality/rates", ("quality",)),
    ("GET", "/archivist", ("archivist",)),
    ("GET", "/archivist?from_date=2026-01-01&to_date=2026-01-31", ("archivist",)),
    ("POST", "/archivist/jobs", ("archivist",)),
    ("GET", "/archivist/jobs/JOB-X", ("archivist",)),
    ("GET", "/archivist/jobs/JOB-X/progress", ("archivist",)),
    ("GET", "/archivist/packages/PKG-X/download", ("archivist",)),
    ("GET", "/archivist/packages/PKG-X/receipt", ("archivist",)),
    ("POST", "/archivist/packages/PKG-X/verify", ("archivist",)),
    ("POST", "/regulator/verify-package", VERIFIERS),
    ("GET", "/regulator", VERIFIERS),
    ("POST", "/regulator/verify-pdf", VERIFIERS),
    ("POST", "/regulator/verify-ledger", VERIFIERS),
    ("GET", "/admin", ("admin",)),
    ("POST", "/admin/users", ("admin",)),
    ("POST", "/admin/settings", ("admin",)),
    ("POST", "/admin/revoke", ("admin",)),
    ("GET", "/channel", ("channel",)),
    ("POST", "/channel/appointments", ("channel",)),
    ("POST", "/channel/preregistrations", ("channel",)),
    ("POST", "/staff/preregistrations/PRE-X/confirm", ("staff",)),
    ("GET", "/staff/booking", ("staff",)),
    ("GET", "/staff/recruitment", ("staff",)),
    ("GET", "/staff/recruitable", ("staff",)),
    ("GET", "/staff/booking/report", ("staff",)),
    ("POST", "/staff/recruitment/contacts", ("staff",)),
    ("GET", "/staff/recruitment/matches", ("staff",)),
    ("POST", "/staff/recruitment/match-requests", ("staff",)),
    ("GET", "/", ALL),
]
PAGES_NOT_IN_MATRIX = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}


def _template(path: str) -> str:
    path = path.split("?")[0].replace(NUMBER, "{donation}").replace("/X999/", "/{staff_id}/")
    path = path.replace("/APT-X/", "/{appointment_id}/").replace("/PRE-X/", "/{prereg_id}/")
    path = path.replace("/MSG-X/", "/{message_id}/").replace("/REQ-X/", "/{request_id}/")
    path = path.replace("/PKG-X/", "/{package_id}/")
    path = re.sub(r"/JOB-X(?=/|$)", "/{job_id}", path)
    return re.sub(r"/steps/heat_seal", "/steps/{step}", path)


def _unknown(path: str) -> bool:
    """A GET of an archive job or package that does not exist: 404 for the allowed roles."""
    return "/JOB-X" in path or "/PKG-X/" in path


def test_the_matrix_names_every_route(web: Web) -> None:
    found = {
        (method, (routes.PREFIX if router in routes.ROUTERS else "") + str(route.path))
        for router in (*routes.ROUTERS, pages.router, pages_archive.router)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert found  # the app's routes were found at all
    listed = {(m, _template(p)) for m, p, _ in API_MATRIX + PAGE_MATRIX}
    assert found == listed | NOT_IN_MATRIX | PAGES_NOT_IN_MATRIX


# Bodies that pass the request parsing but that the services refuse (so nothing is written).
API_BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/donations": {"json": {"id_number": "1", "name": "x", "sex": "F",
                                   "birth_date": "1990-01-01", "phone": "13800000000",
                                   "product": "nothing"}},
    f"/api/v1/donations/{NUMBER}/steps/heat_seal": {"json": {"scans": "not a list"}},
    f"/api/v1/donations/{NUMBER}/amendments": {"json": {"step": "general_exam", "field": "nope",
                                                        "new_value": 1, "reason": "matrix"}},
    "/api/v1/verify/pdf": {"files": {"file": ("x.pdf", b"not a pdf", "application/pdf")}},
    "/api/v1/verify/package": {"files": {"file": ("x.zip", b"not a zip", "application/zip")}},
    "/api/v1/archive/jobs": {"json": {"from_date": "2026-02-01", "to_date": "2026-01-01"}},
    "/api/v1/users": {"json": {"username": "x", "role": "nobody"}},
    "/api/v1/donors/lookup": {"json": {"id_number": "110105194912310021"}},
    "/api/v1/station/settings": {"json": {"key": "nope", "value": 1, "reason": "matrix"}},
    "/api/v1/staff/X999/revoke": {"json": {"reason": "matrix"}},
    "/api/v1/channel/appointments": {"json": {"channel": "fax", "id_number": "1", "sex": "F",
                                              "birth_date": "1990-01-01", "day": "2030-01-01"}},
    "/api/v1/channel/appointments/APT-X/cancel": {"json": {"channel": "wechat"}},
    "/api/v1/recruitment/contacts": {"json": {"id_number": "1", "channel": "phone",
                                              "outcome": "agreed"}},
    "/api/v1/recruitment/match-requests": {"json": {"hospital": "H", "patient_name": "x",
                                                    "abo": "Z", "hla": "A*02"}},
    "/api/v1/recruitment/typings": {"json": {"id_number": "1", "hla": "A*02",
                                             "laboratory": "L"}},
    "/api/v1/booking/schedules": {"json": {"version": "m", "effective_from": "2020-01-01",
                                           "weekdays": {"mon": {}}}},
    "/api/v1/channel/preregistrations": {"json": {"channel": "fax", "id_number": "1",
                                                  "name": "x", "sex": "F",
                                                  "birth_date": "1990-01-01",
                                                  "phone": "13800000000",
                                                  "product": "plasma", "answers": {}}},
}  # fmt: skip


@pytest.mark.parametrize("role", [*ALL, None], ids=[*ALL, "anonymous"])
@pytest.mark.parametrize(("method", "path", "allowed"), API_MATRIX, ids=lambda v: str(v))
def test_api_route_by_role(
    web: Web, role: str | None, method: str, path: str, allowed: tuple[str, ...]
) -> None:
    before = events(web)
    headers = web.bearer(role) if role else {}
    answer = web.client().request(method, path, headers=headers, **API_BODIES.get(path, {}))
    if role is None:
        assert answer.status_code == 401, answer.text
    elif role in allowed:
        assert answer.status_code not in (401, 403) and answer.status_code < 500, answer.text
        if method == "GET":
            # an unknown request id answers 400, an unknown archive job or package 404, to an
            # allowed role (not 401/403)
            expected = 400 if "/REQ-X/" in path else 404 if _unknown(path) else 200
            assert answer.status_code == expected, answer.text
    else:
        assert answer.status_code == 403, answer.text
    assert events(web) == before


@pytest.fixture(scope="module")
def sessions(web: Web) -> dict[str, TestClient]:
    """A browser-like client per role, logged in through the login form."""
    out = {}
    for role, name in ROLE_USER.items():
        client = TestClient(web.app, follow_redirects=False)
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        answer = client.post(
            "/login",
            data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert answer.status_code == 303, answer.text
        out[role] = client
    return out


def _csrf(client: TestClient, role: str) -> str:
    page = client.get(
        {"staff": "/staff", "quality": "/quality", "archivist": "/archivist",
         "regulator": "/regulator", "admin": "/admin", "channel": "/channel"}[role]
    )  # fmt: skip
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


PAGE_BODIES: dict[str, dict[str, Any]] = {
    f"/staff/donations/{NUMBER}/steps/heat_seal": {"data": {"scans": ""}},
    f"/staff/donations/{NUMBER}/amend": {"data": {"step": "general_exam", "field": "nope",
                                                  "new_value": "1", "reason": "matrix"}},
    "/regulator/verify-pdf": {"files": {"file": ("x.pdf", b"not a pdf", "application/pdf")}},
    "/regulator/verify-package": {"files": {"file": ("x.zip", b"not a zip", "application/zip")}},
    "/archivist/jobs": {"data": {"from_date": "2026-02-01", "to_date": "2026-01-01"}},
    "/admin/users": {"data": {"username": "x", "role": "nobody"}},
    "/admin/settings": {"data": {"key": "nope", "value": "1", "reason": "matrix"}},
    "/admin/revoke": {"data": {"staff_id": "X999", "reason": "matrix"}},
    "/channel/appointments": {"data": {"channel": "fax", "id_number": "1", "sex": "F",
                                       "birth_date": "1990-01-01", "day": "2030-01-01"}},
    "/channel/preregistrations": {"data": {"channel": "fax"}},
    "/staff/donors/lookup": {"data": {"id_number": "110105194912310021"}},
    "/staff/recruitment/contacts": {"data": {"id_number": "1", "channel": "phone",
                                             "outcome": "agreed"}},
    "/staff/recruitment/match-requests": {"data": {"hospital": "H", "patient_name": "x",
                                                   "abo": "Z", "hla": "A*02"}},
}  # fmt: skip


@pytest.mark.parametrize("role", [*ALL, None], ids=[*ALL, "anonymous"])
@pytest.mark.parametrize(("method", "path", "allowed"), PAGE_MATRIX, ids=lambda v: str(v))
def test_page_by_role(
    web: Web,
    sessions: dict[str, TestClient],
    role: str | None,
    method: str,
    path: str,
    allowed: tuple[str, ...],
) -> None:
    before = events(web)
    client = sessions[role] if role else TestClient(web.app, follow_redirects=False)
    kwargs: dict[str, Any] = dict(PAGE_BODIES.get(path, {}))
    if method == "POST" and role is not None:
        data = dict(kwargs.get("data", {}))
        data["csrf_token"] = _csrf(client, role)
        kwargs["data"] = data
    answer = client.request(method, path, **kwargs)
    if role is None:
        assert answer.status_code == 401, answer.text
        assert 'action="/login"' in answer.text
    elif role in allowed:
        assert answer.status_code not in (401, 403) and answer.status_code < 500, answer.text
        if method == "GET":
            redirects = path == "/" or path.startswith("/regulator/donation")
            expected = 404 if _unknown(path) else 303 if redirects else 200
            assert answer.status_code == expected, answer.text
    else:
        assert answer.status_code == 403, answer.text
    assert events(web) == before


def test_a_page_post_without_the_csrf_token_is_403(
    web: Web, sessions: dict[str, TestClient]
) -> None:
    answer = sessions["regulator"].post("/regulator/verify-ledger")
    assert answer.status_code == 403
    assert "CSRF" in answer.text


def test_the_session_cookie_is_httponly_and_samesite(web: Web) -> None:
    client = TestClient(web.app, follow_redirects=False)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "ledger_session" in v
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_pages_forbid_scripts_framing_and_foreign_sources(web: Web) -> None:
    answer = web.client().get("/login")
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "<script" not in answer.text


def test_htmx_is_served_from_the_package_as_recorded(web: Web) -> None:
    answer = web.client().get("/static/htmx.min.js")
    assert answer.status_code == 200
    readme = (Path(pages.HERE) / "static" / "README.md").read_text(encoding="utf-8")
    assert hashlib.sha256(answer.content).hexdigest() in readme


def test_openapi_lists_the_api(web: Web) -> None:
    schema = web.client().get("/openapi.json").json()
    assert "/api/v1/donations/{donation}/steps/{step}" in schema["paths"]
    docs = web.client().get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "/static-docs/swagger-ui-bundle.js" in docs.text
    bundle = web.client().get("/static-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "isOAS31" in bundle.text


def test_static_css_is_served_from_the_package(web: Web) -> None:
    answer = web.client().get("/static/ledger.css")
    assert answer.status_code == 200 and "max-width" in answer.text
    assert Path(__file__).exists()


@pytest.mark.postgres
def test_the_api_records_a_step_on_postgresql(pg_schema: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", pg_schema)
    Station.initialise(settings).close()
    add_users(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        station: Station = app.state.ctx.station
        donation_id = registered(station, sequence=31)
        headers = {"Authorization": f"Bearer {login(client, 'nurse').json()['access_token']}"}
        consent = {"answers": {}, "consent": True, "fingerprint_verified": True}
        url = f"/api/v1/donations/{donation_id}/steps/informed_consent"
        answer = client.post(url, json=consent, headers={**headers, "Idempotency-Key": "pg-1"})
        assert answer.status_code == 201, answer.text
        again = client.post(url, json=consent, headers={**headers, "Idempotency-Key": "pg-1"})
        assert again.json() == answer.json()
        assert "informed_consent" in station.app.donation(donation_id).steps
        denied = client.get("/api/v1/users", headers=headers)
        assert denied.status_code == 403


# -- time-slot booking -------------------------------------------------------------------------


def test_a_channel_books_a_slot_until_it_is_full_and_the_calendar_shows_it(web: Web) -> None:
    client = web.client()
    day = station_today() + timedelta(days=40)
    schedule = {
        "version": "http-1",
        "effective_from": day.isoformat(),
        "weekdays": {d: {"10:00": 1} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "holidays": {},
    }
    published = client.post("/api/v1/booking/schedules", json=schedule, headers=web.bearer("admin"))
    assert published.status_code == 201, published.text
    body = {"channel": "wechat", "sex": "F", "birth_date": "1991-02-03", "day": day.isoformat(),
            "slot": "10:00"}  # fmt: skip
    first = client.post(
        "/api/v1/channel/appointments",
        json=body | {"id_number": make_id(date(1991, 2, 3), "F", sequence=301)},
        headers=web.bearer("channel"),
    )
    assert first.status_code == 201, first.text
    assert first.json()["slot"] == "10:00" and first.json()["period"] == "morning"
    second = client.post(
        "/api/v1/channel/appointments",
        json=body | {"id_number": make_id(date(1991, 2, 3), "F", sequence=302)},
        headers=web.bearer("channel"),
    )
    assert second.status_code == 409 and "full" in second.json()["detail"]
    shown = client.get(
        f"/api/v1/booking/calendar?first={day.isoformat()}&days=1", headers=web.bearer("staff")
    )
    assert shown.json() == [{"day": day.isoformat(), "start": "10:00", "holiday": False,
                             "capacity": 1, "booked": 1, "free": 0,
                             "schedule_version": "http-1"}]  # fmt: skip
    page = web.client().get(
        f"/staff/booking?first={day.isoformat()}&days=1",
        headers=web.bearer("staff"),
    )
    assert page.status_code == 200 and "1 of 1 places booked" in page.text


# -- recruitment ---------------------------------------------------------------------------------


def test_a_recruiter_records_a_signed_contact_and_the_statistics_count_it(web: Web) -> None:
    client = web.client()
    before = events(web)
    # the donor of the module's donation (tests.unit.services.test_steps.registered, sequence 3)
    id_number = make_id(date(1985, 3, 4), "F", sequence=3)
    body = {"id_number": id_number, "channel": "phone", "outcome": "unreachable",
            "reason": "no answer"}  # fmt: skip
    recruiter = {"Authorization": f"Bearer {web.tokens['recruiter']}"}
    answer = client.post("/api/v1/recruitment/contacts", json=body, headers=recruiter)
    assert answer.status_code == 201, answer.text
    assert answer.json()["id_number_masked"] == id_number[:6] + "*" * 12
    assert events(web) == before + 1
    stats = client.get("/api/v1/recruitment/statistics", headers=web.bearer("quality")).json()
    mine = [r for r in stats["rows"] if r["recruiter"] == "Z001"]
    assert mine and mine[0]["unreachable"] >= 1


def test_a_staff_member_who_is_no_recruiter_gets_409_and_nothing_is_written(web: Web) -> None:
    before = events(web)
    body = {"id_number": make_id(date(1985, 3, 4), "F", sequence=3), "channel": "phone",
            "outcome": "agreed"}  # fmt: skip
    answer = web.client().post(
        "/api/v1/recruitment/contacts", json=body, headers=web.bearer("staff")
    )
    assert answer.status_code == 409 and "recruiter" in answer.json()["detail"]
    assert events(web) == before


def test_the_recruitable_list_is_masked_and_refuses_a_bad_query(web: Web) -> None:
    client = web.client()
    later = (station_today() + timedelta(days=20)).isoformat()
    rows = client.get(f"/api/v1/recruitment/recruitable?as_of={later}", headers=web.bearer("staff"))
    assert rows.status_code == 200 and rows.json(), rows.text  # the module's collected donor
    assert all(r["id_number_masked"].endswith("*" * 12) for r in rows.json())
    assert all(r["name"].endswith("*") for r in rows.json())
    bad = client.get("/api/v1/recruitment/recruitable?abo=Z", headers=web.bearer("staff"))
    assert bad.status_code == 400 and "ABO" in bad.json()["detail"]


def test_a_matched_recruitment_request_over_the_api_ranks_masked_donors(web: Web) -> None:
    client = web.client()
    recruiter = {"Authorization": f"Bearer {web.tokens['recruiter']}"}
    before = events(web)
    body = {"hospital": "浙大一院", "patient_name": "林小红", "abo": "O", "hla": "A*02:01"}
    made = client.post("/api/v1/recruitment/match-requests", json=body, headers=recruiter)
    assert made.status_code == 201, made.text
    assert made.json()["patient_name_masked"] == "林**" and events(web) == before + 1
    request_id = made.json()["request_id"]
    listed = client.get("/api/v1/recruitment/match-requests", headers=recruiter).json()
    assert next(r for r in listed if r["request_id"] == request_id)["hospital"] == "浙大一院"
    assert "林小红" not in json.dumps(listed)
    later = (station_today() + timedelta(days=20)).isoformat()
    ranked = client.get(
        f"/api/v1/recruitment/match-requests/{request_id}/donors?as_of={later}", headers=recruiter
    )
    assert ranked.status_code == 200 and ranked.json(), ranked.text
    rows = ranked.json()
    assert all(r["donor"]["id_number_masked"].endswith("*" * 12) for r in rows)
    kinds = [r["compatibility"] for r in rows]
    assert kinds == sorted(kinds, key=lambda k: k != "abo_identical")
    # a contact made for it names the request, and the list counts it
    contact = {"id_number": make_id(date(1985, 3, 4), "F", sequence=3), "channel": "phone",
               "outcome": "agreed", "request_id": request_id}  # fmt: skip
    done = client.post("/api/v1/recruitment/contacts", json=contact, headers=recruiter)
    assert done.status_code == 201, done.text
    listed = client.get("/api/v1/recruitment/match-requests", headers=recruiter).json()
    assert next(r for r in listed if r["request_id"] == request_id)["contacts"] == {"agreed": 1}
    page = client.get(f"/staff/recruitment/matches?request_id={request_id}", headers=recruiter)
    assert page.status_code == 200 and f"Donors for request {request_id}" in page.text
    assert "林**" in page.text
    assert 'name="request_id"' in page.text and "林小红" not in page.text
    bad = client.post(
        "/api/v1/recruitment/match-requests", json=body | {"abo": "Z"}, headers=recruiter
    )
    assert bad.status_code in (400, 409) and "ABO" in bad.json()["detail"]


def test_a_typed_donor_is_ranked_by_hpa_and_hla_before_untyped_ones(web: Web) -> None:
    client = web.client()
    lab = {"Authorization": f"Bearer {web.tokens['lab']}"}
    recruiter = {"Authorization": f"Bearer {web.tokens['recruiter']}"}
    donor = make_id(date(1985, 3, 4), "F", sequence=3)  # the module's collected donor
    typing = {"id_number": donor, "hla": "A*02:01 A*11 B*46 B*13", "hpa": "1a1a 2a2b",
              "laboratory": "HLA 实验室", "method": "PCR-SSO"}  # fmt: skip
    before = events(web)
    # only the laboratory's screening technician signs a typing; nothing written otherwise
    refused = client.post("/api/v1/recruitment/typings", json=typing, headers=recruiter)
    assert refused.status_code == 409 and "typing" in refused.json()["detail"], refused.text
    garbage = client.post("/api/v1/recruitment/typings", json=typing | {"hpa": "1c1a"}, headers=lab)
    assert garbage.status_code in (400, 409) and "HPA" in garbage.json()["detail"]
    assert events(web) == before
    done = client.post("/api/v1/recruitment/typings", json=typing, headers=lab)
    assert done.status_code == 201, done.text
    assert done.json()["hla"] == ["A*02", "A*11", "B*13", "B*46"] and donor not in done.text
    assert events(web) == before + 1
    body = {"hospital": "浙大一院", "patient_name": "林小红", "abo": "O",
            "hla": "A*02 A*11 B*46 B*58", "hpa": "1a1a 2a2a"}  # fmt: skip
    made = client.post("/api/v1/recruitment/match-requests", json=body, headers=recruiter)
    assert made.status_code == 201, made.text
    later = (station_today() + timedelta(days=20)).isoformat()
    rows = client.get(
        f"/api/v1/recruitment/match-requests/{made.json()['request_id']}/donors?as_of={later}",
        headers=recruiter,
    ).json()
    typed = [r for r in rows if r["hla_hpa"] != "not typed"]
    assert len(typed) == 1 and rows[0] == typed[0], rows  # typed donors come first
    # B*13 is the donor's one antigen the patient lacks; HPA-2 b is an allele the patient lacks
    assert typed[0]["hla_mismatches"] == 1 and typed[0]["hpa"] == "incompatible"
    assert "HPA-2" in typed[0]["hla_hpa"]


def test_the_booking_report_counts_the_module_collection(web: Web) -> None:
    today = station_today().isoformat()
    answer = web.client().get(
        f"/api/v1/booking/report?start={today}&end={today}", headers=web.bearer("quality")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["registrations"] >= 1 and sum(body["collections_by_hour"].values()) >= 1
    page = web.client().get("/staff/booking/report", headers=web.bearer("staff"))
    assert page.status_code == 200 and "Load by hour" in page.text
