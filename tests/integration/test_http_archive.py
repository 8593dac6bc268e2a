"""The archivist's API (preview, archive jobs, package history, download, receipt,
re-verification) and the regulator's package upload, over HTTP on a small ledger: two complete
donations and one whose donor did not co-sign (refused)."""

from __future__ import annotations

import io
import logging
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.web import create_app
from services import archive
from services.station import Station
from tests.conftest import make_settings
from tests.integration.test_archive import _complete
from tests.integration.test_http_api import ROLE_USER, USERS, add_users, login
from tests.workflow import number_for

pytestmark = pytest.mark.slow
logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
PERIOD = {"from_date": "2026-01-01", "to_date": "2099-12-31"}


@dataclass
class Archive:
    app: FastAPI
    client: TestClient
    station: Station
    tokens: dict[str, str]
    ready: list[str]
    incomplete: str

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[ROLE_USER[role]]}"}

    def events(self) -> int:
        return int(self.station.app.recorder.max_notification_id() or 0)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    tmp = tmp_path_factory.mktemp("web-archive")
    settings = make_settings(tmp / "home", f"sqlite:///{tmp / 'ledger.sqlite'}")
    Station.initialise(settings).close()
    add_users(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        station: Station = app.state.ctx.station
        with app.state.ctx.lock:
            ready = [number_for(_complete(station)), number_for(_complete(station))]
            incomplete = number_for(_complete(station, donor_cosigns=False))
        tokens = {name: login(client, name).json()["access_token"] for name, _, _ in USERS}
        yield Archive(app, client, station, tokens, sorted(ready), incomplete)


def _wait(web: Archive, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = web.client.get(f"/api/v1/archive/jobs/{job_id}", headers=web.bearer("archivist"))
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        if job["state"] != "running" or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


@pytest.fixture(scope="module")
def archived(web: Archive) -> dict[str, Any]:
    """The period archived through the API: the finished job."""
    start = web.client.post("/api/v1/archive/jobs", json=PERIOD, headers=web.bearer("archivist"))
    assert start.status_code == 202, start.text
    assert start.headers["Location"] == f"/api/v1/archive/jobs/{start.json()['job_id']}"
    job = _wait(web, start.json()["job_id"])
    assert job["state"] == "done", job
    return job


def test_preview_lists_the_ready_and_the_refused_with_its_reason_and_writes_nothing(
    web: Archive,
) -> None:
    before = web.events()
    answer = web.client.get(
        "/api/v1/archive/preview", params=PERIOD, headers=web.bearer("archivist")
    )
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert sorted(r["donation_no"] for r in preview["ready"]) == web.ready
    [refused] = preview["refused"]
    assert refused["donation_no"] == web.incomplete
    assert refused["reasons"][0].startswith("missing signature slot: ")
    assert "donor" in refused["reasons"][0]
    assert all(r["donor"].endswith("*") or len(r["donor"]) == 1 for r in preview["ready"])
    assert web.events() == before


def test_preview_of_a_period_ending_before_it_starts_is_400(web: Archive) -> None:
    params = {"from_date": "2026-02-01", "to_date": "2026-01-01"}
    answer = web.client.get(
        "/api/v1/archive/preview", params=params, headers=web.bearer("archivist")
    )
    assert answer.status_code == 400
    assert "before" in answer.json()["detail"]


def test_a_started_job_finishes_and_its_package_verifies(
    web: Archive, archived: dict[str, Any]
) -> None:
    result = archived["result"]
    assert sorted(result["archived"]) == web.ready
    assert [r["donation_no"] for r in result["refused"]] == [web.incomplete]
    assert archived["phase"] == "done" and archived["started_by"] == "archivist"
    packages = web.client.get("/api/v1/archive/packages", headers=web.bearer("quality")).json()
    [package] = [p for p in packages if p["package_id"] == result["package_id"]]
    assert sorted(package["donations"]) == web.ready and package["in_inbox"]
    assert package["archivist"] == "STAFF:R001"  # the logged-in archivist's own certificate
    verified = web.client.post(
        f"/api/v1/archive/packages/{result['package_id']}/verify", headers=web.bearer("archivist")
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["verdict"] == "PASSED"
    assert verified.json()["donations"] == 2


def test_the_receipt_holds_each_signed_archive_event(
    web: Archive, archived: dict[str, Any]
) -> None:
    package_id = archived["result"]["package_id"]
    answer = web.client.get(
        f"/api/v1/archive/packages/{package_id}/receipt", headers=web.bearer("archivist")
    )
    assert answer.status_code == 200
    events = answer.json()["events"]
    assert sorted(e["donation_no"] for e in events) == web.ready
    assert {e["event_type"] for e in events} == {"DonationArchived"}
    assert all(e["state"] == "ok" and e["signature_cms"] for e in events)


def test_an_unknown_package_is_404(web: Archive) -> None:
    for path in ("receipt", "download"):
        answer = web.client.get(
            f"/api/v1/archive/packages/..%2F..%2Fetc/{path}", headers=web.bearer("archivist")
        )
        assert answer.status_code == 404, answer.text


def _download(web: Archive, package_id: str) -> bytes:
    answer = web.client.get(
        f"/api/v1/archive/packages/{package_id}/download", headers=web.bearer("archivist")
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    data: bytes = answer.content
    return data


def _upload(web: Archive, data: bytes, role: str = "regulator") -> Any:
    files = {"file": ("package.zip", data, "application/zip")}
    return web.client.post("/api/v1/verify/package", files=files, headers=web.bearer(role))


def test_the_regulator_uploads_the_intact_package_passed(
    web: Archive, archived: dict[str, Any]
) -> None:
    before = web.events()
    answer = _upload(web, _download(web, archived["result"]["package_id"]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["verdict"] == "PASSED"
    assert answer.json()["package_id"] == archived["result"]["package_id"]
    assert web.events() == before  # read only


def test_the_regulator_uploads_a_package_with_one_byte_changed_failed(
    web: Archive, archived: dict[str, Any]
) -> None:
    original = zipfile.ZipFile(io.BytesIO(_download(web, archived["result"]["package_id"])))
    form = next(n for n in original.namelist() if n.endswith("-registration.pdf"))
    out = io.BytesIO()
    with original, zipfile.ZipFile(out, "w") as changed:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == form:
                data = data[:1000] + bytes([data[1000] ^ 0x01]) + data[1001:]
            changed.writestr(info, data)
    answer = _upload(web, out.getvalue())
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["verdict"] == "FAILED"
    assert any(form.rsplit("/", 1)[-1] in str(f) for f in report["findings"])


def test_an_upload_that_is_no_zip_or_escapes_the_folder_is_400(web: Archive) -> None:
    assert _upload(web, b"not a zip").status_code == 400
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as evil:
        evil.writestr("../bagit.txt", "BagIt-Version: 0.97\n")
    answer = _upload(web, out.getvalue())
    assert answer.status_code == 400
    assert "outside" in answer.json()["detail"]


def test_a_second_start_while_one_runs_is_409(
    web: Archive, archived: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = archive.archive_period

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(archive, "archive_period", held)
    headers = web.bearer("archivist")
    first = web.client.post("/api/v1/archive/jobs", json=PERIOD, headers=headers)
    assert first.status_code == 202, first.text
    try:
        second = web.client.post("/api/v1/archive/jobs", json=PERIOD, headers=headers)
        assert second.status_code == 409
        assert first.json()["job_id"] in second.json()["detail"]
        running = web.client.get(f"/api/v1/archive/jobs/{first.json()['job_id']}", headers=headers)
        assert running.json()["state"] == "running"
    finally:
        release.set()
    job = _wait(web, first.json()["job_id"])
    assert job["state"] == "done"
    assert job["result"]["package_id"] is None  # archived already: nothing new in the period
    assert job["result"]["already_archived"] == 2
