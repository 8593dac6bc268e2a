"""The signed PDF/A-3b forms of a sealed donation, checked with tools that are not ours:
poppler's pdfsig (NSS trust db holding only the test root), pdffonts, qpdf --check, and pikepdf
for the PDF/A claims and the associated files."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pikepdf
import pytest
from cryptography.hazmat.primitives import serialization

from documents.forms.model import ALL_FORMS
from ledger.signer import CredentialSigner
from services.forms import produce_forms, producer_for
from services.station import Station
from tests import workflow
from tests.conftest import make_settings

TOOLS = ("pdfsig", "pdffonts", "qpdf", "certutil", "pdftotext")
needs_tools = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason=f"needs {', '.join(TOOLS)} (Debian poppler-utils, qpdf, libnss3-tools)",
)
RARE_NAME = "陈䶮𬌗"  # U+4DAE (CJK Ext A) and U+2C317 (Ext E): beyond GB2312


@dataclass
class Produced:
    station: Station
    donation_id: UUID
    paths: list[Path]
    donor: CredentialSigner


def _donation_signed_by_donor(station: Station) -> tuple[UUID, CredentialSigner]:
    """A whole donation whose donor also co-signs the pre- and post-collection checks, with an
    amendment after recording and an adverse reaction."""
    app = station.app
    donation_id = workflow.register(station, name=RARE_NAME)
    donor = station.donor_signer(donation_id, fingerprint_verified=True)
    app.sign_consent(
        donation_id,
        donor,
        answers={"recent_illness": False, "understood_risks": True},
        consent=True,
        fingerprint_verified=True,
        donor_certificate_serial=donor.certificate_serial,
    )
    app.apply_signature(donation_id, station.signer("P001"), "informed_consent:examining_physician")
    app.record_exam(
        donation_id,
        station.signer("P001"),
        weight_kg=61.0,
        sbp_mmhg=118,
        dbp_mmhg=76,
        pulse_per_min=70,
        temperature_c=36.5,
        findings="穿刺部位无异常",
    )
    app.record_test(
        donation_id,
        station.signer("T001"),
        hb_g_per_l=131.0,
        hct_fraction=0.41,
        plt_10e9_per_l=240.0,
    )
    app.assess(donation_id, station.signer("P002"), decision="eligible")
    number = workflow.number_for(donation_id)
    app.assign_number(donation_id, station.system, number)
    nurse = station.signer("N001")
    scans = [f"BAG-{number}", f"TUBE-{number}"]
    app.verify_pre_collection(
        donation_id,
        nurse,
        scans=scans,
        separator_model="Trima Accel",
        separator_serial="SEP-7",
        kit_lot="K1",
        acd_lot="A1",
        saline_lot="S1",
        venipuncture_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    app.apply_signature(donation_id, donor, "pre_collection:donor")
    app.record_collection(
        donation_id,
        nurse,
        started_at="2026-11-22T08:00:00+00:00",
        ended_at="2026-11-22T09:05:00+00:00",
        processed_blood_ml=2700,
        acd_ml=290,
        product_volume_ml=255,
        platelet_yield_10e11=2.7,
        doses=1,
        plasma_ml=0,
        auto_imported=True,
    )
    app.record_reaction(
        donation_id,
        nurse,
        reaction_type="vasovagal",
        severity="mild",
        onset_at=datetime.now(UTC).isoformat(timespec="seconds"),
        treatment="平卧休息",
        outcome="recovered",
    )
    app.verify_post_collection(donation_id, nurse, scans)
    app.apply_signature(donation_id, donor, "post_collection:donor")
    app.verify_heat_seal(donation_id, station.signer("S001"), scans)
    app.amend(
        donation_id,
        station.signer("P001"),
        step="general_exam",
        field="temperature_c",
        new_value=36.7,
        reason="transcription error",
    )
    app.seal(donation_id, station.system)
    return donation_id, donor


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Produced]:
    tmp = tmp_path_factory.mktemp("forms")
    station = Station.initialise(make_settings(tmp / "home", f"sqlite:///{tmp / 'l.sqlite'}"))
    try:
        donation_id, donor = _donation_signed_by_donor(station)
        paths = produce_forms(station, donation_id, tmp / "out", donor)
        yield Produced(station, donation_id, paths, donor)
    finally:
        station.close()


@pytest.fixture(scope="module")
def nss_db(produced: Produced, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An NSS database trusting only the station root (made at test time)."""
    if shutil.which("certutil") is None:
        pytest.skip("certutil (libnss3-tools) is not installed")
    directory = tmp_path_factory.mktemp("nss")
    root = directory / "root.pem"
    root.write_bytes(produced.station.pki.root_certificate.public_bytes(serialization.Encoding.PEM))
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True)
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{directory}",
            "-n",
            "root",
            "-t",
            "CT,C,C",
            "-a",
            "-i",
            str(root),
        ],
        check=True,
    )
    return f"sql:{directory}"


def test_the_three_configured_forms_are_written(produced: Produced) -> None:
    names = [p.name for p in produced.paths]
    number = workflow.number_for(produced.donation_id)
    assert names == [f"{number}-{kind.value}.pdf" for kind in ALL_FORMS]


@needs_tools
def test_pdfsig_finds_every_signature_valid_and_trusted(produced: Produced, nss_db: str) -> None:
    for path in produced.paths:
        out = subprocess.run(
            ["pdfsig", "-nssdir", nss_db, str(path)], capture_output=True, text=True, check=False
        ).stdout
        blocks = re.split(r"\nSignature #\d+:", out)[1:]
        assert blocks, out
        signatures = [b for b in blocks if "ETSI.CAdES.detached" in b]
        # poppler 22 cannot check document timestamps (ETSI.RFC3161): only their presence.
        timestamps = [b for b in blocks if "ETSI.RFC3161" in b or "DocTimeStamp" in b]
        assert len(timestamps) == 1, out
        assert len(signatures) >= 2, out
        for block in signatures:
            assert "Signature is Valid." in block, (path.name, block)
            assert "Certificate is Trusted." in block, (path.name, block)


@needs_tools
def test_the_donor_signs_the_consent_in_the_pdf_when_the_credential_is_at_hand(
    produced: Produced, nss_db: str
) -> None:
    consent = produced.paths[0]
    out = subprocess.run(
        ["pdfsig", "-nssdir", nss_db, str(consent)], capture_output=True, text=True, check=True
    ).stdout
    assert f"serialNumber={produced.donor.subject_id}" in out
    assert "examining_physician" in out and "title=system" in out


@needs_tools
def test_qpdf_check_is_clean_and_every_font_is_embedded(produced: Produced) -> None:
    for path in produced.paths:
        check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "No syntax or stream encoding errors found" in check.stdout
        fonts = subprocess.run(
            ["pdffonts", str(path)], capture_output=True, text=True, check=True
        ).stdout.splitlines()[2:]
        assert fonts, f"{path.name}: no fonts"
        for line in fonts:
            columns = line.split()
            # name type... encoding emb sub uni object ID: emb is the 5th field from the end
            assert columns[-5] == "yes", f"{path.name}: font not embedded: {line}"


def test_pdfa_claims_survive_signing(produced: Produced) -> None:
    for path in produced.paths:
        assert path.read_bytes().startswith(b"%PDF-1.7")
        with pikepdf.open(path) as pdf:
            assert "/Version" not in pdf.Root or str(pdf.Root.Version) == "/1.7"
            xmp = bytes(pdf.Root.Metadata.read_bytes()).decode("utf-8")
            assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp
            assert "/Filter" not in pdf.Root.Metadata.stream_dict
            intent = pdf.Root.OutputIntents[0]
            assert intent.S == "/GTS_PDFA1" and "sRGB" in str(intent.OutputConditionIdentifier)
            assert "/Encrypt" not in pdf.trailer
            assert "/JavaScript" not in pdf.Root.get("/Names", {})
            assert "/DSS" in pdf.Root and len(pdf.Root.DSS.Certs) >= 3
            assert len(pdf.Root.DSS.CRLs) >= 1
            for field in pdf.Root.AcroForm.Fields:
                assert "/N" in field.AP, f"{field.T} has no appearance"
                assert int(field.F) & 4, f"{field.T} is not printable"


def test_evidence_is_attached_and_checks_out(produced: Produced) -> None:
    app = produced.station.app
    events = list(app.repository.event_store.get(produced.donation_id))
    with pikepdf.open(produced.paths[2]) as pdf:
        files = {name: spec for name, spec in pdf.attachments.items()}
        relationships = {str(f.AFRelationship) for f in pdf.Root.AF}
        assert relationships <= {"/Source", "/Supplement"}
        assert len(pdf.Root.AF) == len(files)
        manifest = json.loads(files["manifest.json"].get_file().read_bytes())
        assert len(manifest["events"]) == len(events)
        assert manifest["pending"] == []
        for entry in manifest["events"]:
            body = files[entry["canonical"]].get_file().read_bytes()
            assert hashlib.sha256(body).hexdigest() == entry["event_hash"]
            assert files[entry["signature"]].get_file().read_bytes()[:1] == b"\x30"
            assert entry["timestamp"]["token"] in files
        form = json.loads(files["form.json"].get_file().read_bytes())
        assert form["form"] == "collection"
        assert {s["state"] for s in form["signers"]} == {"pades"}


def test_openssl_verifies_an_attached_event_signature(produced: Produced, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    with pikepdf.open(produced.paths[0]) as pdf:
        files = {name: spec.get_file().read_bytes() for name, spec in pdf.attachments.items()}
    manifest = json.loads(files["manifest.json"])
    entry = manifest["events"][0]
    for name in (entry["canonical"], entry["signature"], "chain.pem"):
        (tmp_path / name).write_bytes(files[name])
    result = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            entry["signature"],
            "-content",
            entry["canonical"],
            "-CAfile",
            "chain.pem",
            "-out",
            "/dev/null",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@needs_tools
def test_the_page_shows_the_rare_name_amendment_mark_and_station_header(
    produced: Produced,
) -> None:
    text = subprocess.run(
        ["pdftotext", str(produced.paths[0]), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert RARE_NAME in text  # real glyphs: the ToUnicode map round-trips the characters
    assert "U+" not in text  # no missing-glyph fallback was needed
    assert "36.7" in text and "※已更正" in text
    params = produced.station.app.station().parameters
    assert params["station_name"] in text and params["form_template_code"] in text
    assert "330106" in text and "*" in text  # the masked ID number only


def test_later_production_without_the_donor_credential_says_so(
    produced: Produced, tmp_path: Path
) -> None:
    paths = produce_forms(produced.station, produced.donation_id, tmp_path, None)
    with pikepdf.open(paths[0]) as pdf:
        form = json.loads(pdf.attachments["form.json"].get_file().read_bytes())
        fields = [str(f.T) for f in pdf.Root.AcroForm.Fields]
    donor = [s for s in form["signers"] if s["subject"].startswith("DONOR:")]
    assert [s["state"] for s in donor] == ["evidence_only"]
    assert not any("donor" in name for name in fields)
    text = subprocess.run(
        ["pdftotext", str(paths[0]), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "CAdES" in text


def test_the_font_is_parsed_once_per_process(produced: Produced, tmp_path: Path) -> None:
    producer = producer_for(produced.station)
    before = producer.font.rebuilds
    produce_forms(produced.station, produced.donation_id, tmp_path, None)
    assert producer.font.rebuilds == before  # no new characters: no new font work


def test_ledger_forms_command_writes_the_forms(tmp_path: Path) -> None:
    import argparse

    from api.forms import register

    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'l.sqlite'}")
    station = Station.initialise(settings)
    try:
        donation_id = workflow.complete(station)
        number = workflow.number_for(donation_id)
    finally:
        station.close()
    parser = argparse.ArgumentParser(prog="ledger")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(["forms", number, "--out", str(tmp_path / "out")])
    assert args.handler(settings, args) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{number}-{kind.value}.pdf" for kind in ALL_FORMS
    )


def test_a_station_that_sets_fewer_forms_gets_only_those(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli import main

    db, home = f"sqlite:///{tmp_path / 'l.sqlite'}", tmp_path / "home"
    monkeypatch.setenv("LEDGER_DB", db)
    monkeypatch.setenv("LEDGER_HOME", str(home))
    monkeypatch.setenv("LEDGER_PASSPHRASE", "test-only-passphrase")
    monkeypatch.setenv("LEDGER_STATION_ID", "TEST-01")
    assert main(["init"]) == 0
    station = Station.open(make_settings(home, db))
    try:
        parameters = station.app.station().parameters
        assert parameters["parameter_set"] == "station-defaults@2"
        assert parameters["forms"] == [kind.value for kind in ALL_FORMS]
        assert parameters["timestamp_mode"] == "batch"
        donation_id = workflow.complete(station)
        number = workflow.number_for(donation_id)
    finally:
        station.close()
    chosen = '["consent","registration"]'
    assert main(["station", "set", "forms", chosen, "--reason", "collection record on paper"]) == 0
    capsys.readouterr()
    assert main(["station", "show"]) == 0
    assert json.loads(capsys.readouterr().out)["forms"] == ["consent", "registration"]
    assert main(["forms", number, "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{number}-consent.pdf",
        f"{number}-registration.pdf",
    ]


LONG_QUESTION = "近期是否接受过输血、器官移植或其他可能经血液传播疾病的治疗或操作"


def _render_questionnaire(tmp_path: Path) -> Path:
    from documents.forms.fonts import form_font
    from documents.forms.model import Field, Form, FormKind, Header, Section
    from documents.forms.render import render

    header = Header(
        station_name="浙江省血液中心",
        department="献血服务二科",
        title="无偿献血者知情同意及健康状况征询表",
        title_en="Informed consent and health questionnaire",
        template_code="ZJBC/L/1",
        template_version="1",
        donation_no="9000626123456",
        phone_callback="—",
        sealed_at="2026-11-22 09:51:26 +08:00",
        final_status="完成",
    )
    questions = (
        Field("近期是否患病", "否"),
        Field("7天内是否服用阿司匹林等药物", "否"),
        Field("3天内是否拔牙或口腔治疗", "否"),
        Field(LONG_QUESTION, "否"),
        Field("是否已了解献血相关风险", "是"),
        Field("乙肝表面抗原 HBsAg", "阴性"),
    )
    form = Form(FormKind.CONSENT, header, (Section("健康状况征询", questions),), ())
    rendered = render(form, (), form_font(), created=datetime.now(UTC))
    path = tmp_path / "questionnaire.pdf"
    path.write_bytes(rendered.pdf)
    return path


@needs_tools
def test_questionnaire_labels_never_run_into_their_answers(tmp_path: Path) -> None:
    """Each label ends left of its answer's cell; a label too long for its column wraps."""
    path = _render_questionnaire(tmp_path)
    html = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    words = [
        (text, float(x0), float(y0), float(x1))
        for x0, y0, x1, text in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>',
            html,
        )
    ]
    half = (210 - 2 * 12) / 2 * 72 / 25.4 + 12 * 72 / 25.4  # the right column's left edge, pt
    for label, answer in [
        ("7天内是否服用阿司匹林等药物", "否"),
        ("3天内是否拔牙或口腔治疗", "否"),
        ("是否已了解献血相关风险", "是"),
    ]:
        (box,) = [w for w in words if w[0] == label]
        column = [w for w in words if (w[1] >= half) == (box[1] >= half)]
        (value,) = [w for w in column if w[0] == answer and abs(w[2] - box[2]) < 1]
        assert box[3] + 2 < value[1], (label, box, value)
    # the long question wraps inside its label column, left of its answer
    parts = [w for w in words if w[0] and w[0] in LONG_QUESTION and len(w[0]) > 1]
    assert "".join(w[0] for w in parts) == LONG_QUESTION
    assert len({round(w[2]) for w in parts}) >= 2, parts
    answers = [w for w in words if w[0] == "否" and abs(w[2] - parts[0][2]) < 1]
    (cell,) = [a for a in answers if (a[1] >= half) == (parts[0][1] >= half)]
    assert max(w[3] for w in parts) + 2 < cell[1]
    hbsag = [w for w in words if w[0] in ("乙肝表面抗原", "HBsAg")]
    (negative,) = [w for w in words if w[0] == "阴性"]
    assert max(w[3] for w in hbsag) + 2 < negative[1]


def test_our_verifier_passes_forms_signed_by_a_donor_with_a_rare_name(produced: Produced) -> None:
    """The donor's name holds U+2C317 (unassigned in Unicode 3.2, which RFC 4518 name comparison
    uses); the forms the donor signed still verify with pyHanko's path building."""
    from documents.pdf_verify import verify_pdf

    for path in produced.paths:
        report = verify_pdf(path.read_bytes(), produced.station.trust_roots(), name=str(path))
        assert report.bottom_line, (path.name, report.failures())
