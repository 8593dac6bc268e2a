"""The pages in a real browser: Debian's chromium driven by Playwright's Python API (Playwright's
own browser download is not reachable), against `ledger serve`'s app on a real port.

Each role's main journey: the staff member logs in on a phone-width page and records a step;
a physician amends a value and the quality manager sees the prior value; the archivist sees
the sealed donation queued, archives a period with live progress and re-verifies the package;
the regulator uploads a signed PDF and reads the verdict; the
administrator adds a user. Skipped, with the reason, when chromium or Playwright is missing
(`scripts/prereqs test` installs chromium, CI runs these).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import uvicorn

from api.web import create_app
from projections.eventtime import station_today
from services.booking import QUESTIONNAIRE
from services.station import Station
from tests import pdf_attacks
from tests.conftest import make_settings
from tests.integration.test_archive import _complete
from tests.integration.test_http_api import PASSWORD, add_users
from tests.pdf_samples import evidence_attachments, genuine_form, make_station, unsigned_form
from tests.unit.services.test_steps import registered, step, through_collection
from tests.workflow import make_id, number_for

logging.getLogger("pyhanko").setLevel(logging.CRITICAL)

CHROMIUM = os.environ.get("LEDGER_TEST_CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 390, "height": 844}
NUMBER = "9000626200001"

#: CI sets it: a missing browser is then a failure, not a skip.
REQUIRED = os.environ.get("LEDGER_TEST_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"LEDGER_TEST_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    import playwright.sync_api as playwright_api
except ImportError:  # pragma: no cover - the dev extra brings it
    _unavailable("playwright (the dev extra) is not installed")
EXECUTABLE = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
if EXECUTABLE is None:
    _unavailable(f"no chromium at {CHROMIUM}: apt-get install chromium (scripts/prereqs test)")


@dataclass
class Served:
    url: str
    station: Station
    files: dict[str, Path]
    donation_id: str
    complete: str  # sealed with every co-signature: archivable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("browser")
    settings = make_settings(tmp / "home", f"sqlite:///{tmp / 'ledger.sqlite'}")
    Station.initialise(settings).close()
    add_users(settings)
    sample = make_station(tmp / "sample" / "pki")
    genuine = genuine_form(sample, unsigned_form(attachments=evidence_attachments(sample)))
    files = {
        "genuine": tmp / "genuine.pdf",
        "attacked": tmp / "attacked.pdf",
        "root": tmp / "root.pem",
    }
    files["genuine"].write_bytes(genuine)
    files["attacked"].write_bytes(pdf_attacks.isa_content_appended(genuine))
    files["root"].write_bytes(sample.root_pem())
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.05)
    station: Station = app.state.ctx.station
    with app.state.ctx.lock:
        sealed = registered(station, sequence=21)
        through_collection(station, sealed, NUMBER)
        step(station, NUMBER, "seal", "N001")
        complete = number_for(_complete(station))
        open_one = registered(station, sequence=22)
        step(station, open_one, "informed_consent", "C001", answers={}, consent=True,
             fingerprint_verified=True)  # fmt: skip
    try:
        yield Served(f"http://127.0.0.1:{port}", station, files, str(open_one), complete)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = p.chromium.launch(executable_path=EXECUTABLE, args=args)
        try:
            yield launched
        finally:
            launched.close()


def logged_in(browser: Any, served: Served, user: str, viewport: dict[str, int] = PHONE) -> Any:
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(f"{served.url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    return page


def fits_the_width(page: Any) -> bool:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width <= PHONE["width"]


def test_staff_records_a_step_on_a_phone_width_page(browser: Any, served: Served) -> None:
    page = logged_in(browser, served, "physician")
    assert page.url.endswith("/staff")
    assert fits_the_width(page)
    page.fill("input[name=donation]", served.donation_id)
    page.click("main button[type=submit]")
    page.click("a[href$='/steps/general_exam']")
    assert fits_the_width(page)
    for name, value in {
        "weight_kg": "61.5",
        "sbp_mmhg": "118",
        "dbp_mmhg": "76",
        "pulse_per_min": "70",
        "temperature_c": "36.5",
    }.items():
        page.fill(f"input[name={name}]", value)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "general_exam recorded" in page.inner_text(".message")
    assert fits_the_width(page)
    exam = served.station.app.donation(UUID(served.donation_id))
    assert exam.steps["general_exam"]["values"]["weight_kg"] == 61.5
    assert exam.steps["general_exam"]["actor"] == "STAFF:P001"


def test_a_bad_value_shows_one_line_and_records_nothing(browser: Any, served: Served) -> None:
    page = logged_in(browser, served, "physician")
    page.goto(f"{served.url}/staff/donations/{NUMBER}/steps/adverse_reaction")
    page.fill("input[name=reaction_type]", "vasovagal")
    page.fill("input[name=onset_at]", "2026-12-06T08:00:00+00:00")
    page.fill("input[name=outcome]", "recovered")
    before = served.station.app.recorder.max_notification_id()
    page.click("main button[type=submit]")  # the donation is sealed: refused
    page.wait_for_load_state()
    assert page.inner_text(".message").strip()
    assert served.station.app.recorder.max_notification_id() == before


def test_amend_then_the_quality_manager_sees_the_prior_value(browser: Any, served: Served) -> None:
    page = logged_in(browser, served, "physician")
    page.goto(f"{served.url}/staff/donations/{NUMBER}/amend")
    page.select_option("select[name=step]", "general_exam")
    page.fill("input[name=field]", "temperature_c")
    page.fill("input[name=new_value]", "36.9")
    page.fill("input[name=reason]", "transcription error")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "36.6 -> 36.9" in page.inner_text(".message")
    quality = logged_in(browser, served, "quality")
    assert quality.url.endswith("/quality") and fits_the_width(quality)
    row = quality.locator("tr.amendment", has_text="temperature_c")
    assert row.locator("td.old").inner_text() == "36.6"
    assert row.locator("td.new").inner_text() == "36.9"
    assert "transcription error" in row.inner_text()
    quality.click("a[href='/quality/rates']")
    quality.wait_for_load_state()
    assert quality.locator("#rates-chart rect.bar").count() > 0
    modified = quality.locator("tr.rate").first.inner_text()
    assert modified.split("\t")[1:3] != ["0", "0"], modified


def test_the_archivist_sees_the_sealed_donation_queued(browser: Any, served: Served) -> None:
    page = logged_in(browser, served, "archivist")
    assert page.url.endswith("/archivist") and fits_the_width(page)
    row = page.locator("tr.queued", has_text=NUMBER)
    assert row.count() == 1
    assert "张*" in row.inner_text()


def test_the_archivist_archives_a_period_with_live_progress_and_reverifies_the_package(
    browser: Any, served: Served
) -> None:
    page = logged_in(browser, served, "archivist")
    today = station_today()
    page.fill("input[name=from_date]", (today - timedelta(days=1)).isoformat())
    page.fill("input[name=to_date]", (today + timedelta(days=1)).isoformat())  # station: UTC+8
    page.click("#period button")
    page.wait_for_load_state()
    assert page.locator("tr.ready", has_text=served.complete).count() == 1
    assert fits_the_width(page)
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/progress") else None)
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Security Policy" in m.text else None)
    page.click("#archive-button")
    page.wait_for_load_state()
    job_url = page.url
    assert "/archivist/jobs/" in job_url
    first_state = page.get_attribute("#progress", "data-state")
    assert page.evaluate("typeof htmx") == "object"  # the vendored script ran under the CSP
    # htmx replaces the progress fragment every second until the job is done; the page
    # itself is not reloaded (same URL, and the fragment has no refresh of its own).
    page.wait_for_selector("#progress[data-state=done]", timeout=180_000)
    assert page.url == job_url
    if first_state == "running":
        assert polls, "the job page never polled its progress"
    assert not blocked, blocked
    package_id = page.inner_text("#job-package")
    assert package_id.startswith("TEST-01-")
    assert fits_the_width(page)
    page.click("a[href='/archivist#packages']")
    page.wait_for_load_state()
    row = page.locator(f"tr.package[data-package='{package_id}']")
    assert served.complete in row.inner_text()
    row.locator("button", has_text="Re-verify").click()
    page.wait_for_load_state()
    assert page.inner_text("#verdict") == "PASSED"
    assert fits_the_width(page)


@pytest.mark.parametrize(("name", "verdict"), [("genuine", "PASSED"), ("attacked", "FAILED")])
def test_the_regulator_uploads_a_pdf_and_reads_the_verdict(
    browser: Any, served: Served, name: str, verdict: str
) -> None:
    page = logged_in(browser, served, "regulator")
    assert page.url.endswith("/regulator") and fits_the_width(page)
    page.set_input_files("input[name=file]", str(served.files[name]))
    page.set_input_files("input[name=trust]", str(served.files["root"]))
    page.click("form[action='/regulator/verify-pdf'] button")
    page.wait_for_load_state()
    assert page.inner_text("#verdict") == verdict
    assert fits_the_width(page)


def test_the_administrator_adds_a_user_and_sees_the_password_once(
    browser: Any, served: Served
) -> None:
    page = logged_in(browser, served, "admin")
    assert fits_the_width(page)
    page.fill("input[name=username]", "archivist2")
    page.select_option("select[name=role]", "archivist")
    page.click("form[action='/admin/users'] button")
    page.wait_for_load_state()
    assert "password (shown once)" in page.inner_text(".message")
    assert "archivist2" in page.inner_text("table")


def test_a_donor_books_and_pre_registers_on_the_h5_page_and_the_clerk_confirms(
    browser: Any, served: Served
) -> None:
    birth = date(1992, 7, 8)
    id_number = make_id(birth, "F", sequence=99)
    page = logged_in(browser, served, "channel")
    assert page.url.endswith("/channel") and fits_the_width(page)
    book = page.locator("#book")
    book.locator("select[name=channel]").select_option("wechat")
    book.locator("input[name=id_number]").fill(id_number)
    book.locator("input[name=birth_date]").fill(birth.isoformat())
    book.locator("input[name=day]").fill((station_today() + timedelta(days=3)).isoformat())
    book.locator("button").click()
    page.wait_for_load_state()
    assert "booked" in page.inner_text(".message")
    form = page.locator("#prereg")
    assert form.locator("input[name=appointment_id]").input_value().startswith("APT-")
    form.locator("select[name=channel]").select_option("wechat")
    form.locator("input[name=name]").fill("孙七")
    form.locator("input[name=id_number]").fill(id_number)
    form.locator("input[name=birth_date]").fill(birth.isoformat())
    form.locator("input[name=phone]").fill("13655556666")
    for question in QUESTIONNAIRE:
        form.locator(f"select[name={question}]").select_option("no")
    form.locator("button").click()
    page.wait_for_load_state()
    assert "received" in page.inner_text(".message") and fits_the_width(page)
    clerk = logged_in(browser, served, "clerk")
    card = clerk.locator("section.prereg", has_text="孙*")
    assert "136****6666" in card.inner_text()
    card.locator("button").click()
    clerk.wait_for_load_state()
    assert "confirmed" in clerk.inner_text(".message")
    assert "wechat" in clerk.inner_text("main")


def test_logging_out_ends_the_session(browser: Any, served: Served) -> None:
    page = logged_in(browser, served, "regulator")
    page.click("header button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith("/login")
    answer = page.goto(f"{served.url}/regulator")
    assert answer is not None and answer.status == 401
