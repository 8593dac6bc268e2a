"""One-click archiving end to end: the package, tools not ours on it, and one test per way of
tampering with it (each must make `verify-package` FAILED, naming the file or the donation).

One station and one package per module (forms are slow to render and sign); every tampering test
works on its own copy of the package.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import bagit
import pytest

from api.cli import main
from documents import archive_package as fmt
from documents.package_verify import PackageReport, verify_package
from ledger.archive import AMENDED, ORIGINAL, ArchiveItem, archive_item_id_for
from ledger.checkpoints import SignedCheckpoint
from ledger.report import Code, Verdict
from projections.eventtime import station_date
from services import archive, checkpoints
from services.archive import ArchivePeriod, archive_period
from services.station import Station
from signing.errors import InputError
from tests import workflow
from tests.conftest import make_settings

pytestmark = pytest.mark.slow
TODAY = station_date(datetime.now(UTC))


@dataclass
class Archived:
    station: Station
    home: Path
    package: Path
    result: archive.ArchiveResult
    numbers: list[str]  # archived
    incomplete: str  # refused: a co-signature missing
    checkpoint_before: Path


def _complete(station: Station, *, donor_cosigns: bool = True) -> UUID:
    """A whole donation, every required co-signature given (the donor's unless told not)."""
    app = station.app
    donation_id = workflow.register(station)
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
    )
    app.record_test(
        donation_id, station.signer("T001"), hb_g_per_l=131.0, hct_fraction=0.41,
        plt_10e9_per_l=240.0,
    )  # fmt: skip
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
    if donor_cosigns:
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
    app.verify_post_collection(donation_id, nurse, scans)
    if donor_cosigns:
        app.apply_signature(donation_id, donor, "post_collection:donor")
    app.verify_heat_seal(donation_id, station.signer("S001"), scans)
    app.seal(donation_id, station.system)
    return donation_id


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    root = tmp_path_factory.mktemp("archive")
    settings = make_settings(root / "home", f"sqlite:///{root / 'ledger.sqlite'}")
    with Station.initialise(settings) as station:
        ids = [_complete(station), _complete(station)]
        incomplete = _complete(station, donor_cosigns=False)
        before = root / "before.json"
        checkpoints.issue(station, before)
        result = archive_period(station, ArchivePeriod(TODAY, TODAY, out=root / "inbox"))
        assert result.package is not None
        yield Archived(
            station,
            root / "home",
            result.package,
            result,
            [workflow.number_for(i) for i in ids],
            workflow.number_for(incomplete),
            before,
        )


def _copy(archived: Archived, tmp_path: Path) -> Path:
    target = tmp_path / archived.package.name
    shutil.copytree(archived.package, target)
    return target


def _verify(archived: Archived, package: Path) -> PackageReport:
    return verify_package(package, archived.station.trust_roots())


def _flip(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _donation(package: Path, number: str) -> Path:
    return package / "data" / fmt.RECORDS / number


def _failed_naming(report: PackageReport, code: Code, name: str) -> None:
    assert report.verdict is Verdict.FAILED
    hits = [f for f in report.findings if f.code is code and name in f.subject]
    assert hits, [f.describe() for f in report.findings]


# -- the package as made ---------------------------------------------------------------------


def test_package_holds_the_complete_donations_and_refuses_the_incomplete(
    archived: Archived,
) -> None:
    result = archived.result
    assert sorted(result.archived) == sorted(archived.numbers)
    assert [r.donation_no for r in result.refused] == [archived.incomplete]
    assert any("missing signature slot" in r for r in result.refused[0].reasons)
    assert not list(archived.package.parent.glob(".*.partial"))  # renamed when complete
    folders = sorted(p.name for p in (archived.package / "data" / fmt.RECORDS).iterdir())
    assert folders == sorted(archived.numbers)
    for number in archived.numbers:
        names = sorted(p.name for p in _donation(archived.package, number).iterdir())
        assert names == sorted(
            [f"{number}-{k}.pdf" for k in ("consent", "registration", "collection")]
            + [f"{number}{fmt.ENCAPSULATION_SUFFIX}", "evidence"]
        )


def test_verify_package_passes_on_the_package_as_made(archived: Archived) -> None:
    report = _verify(archived, archived.package)
    assert report.verdict is Verdict.PASSED, [f.describe() for f in report.issues()]
    assert report.donations == 2 and report.forms == 6
    assert report.events > 0 and report.checkpoint_size


def test_catalogue_is_masked_valid_and_the_same_in_xml_and_csv(archived: Archived) -> None:
    data = archived.package / "data"
    xml = (data / fmt.CATALOGUE_XML).read_bytes()
    assert fmt.catalogue_schema().validate(fmt.parse_xml(xml))
    rows = fmt.read_catalogue_xml(xml)
    assert rows == fmt.read_catalogue_csv((data / fmt.CATALOGUE_CSV).read_bytes())
    for row in rows:
        assert row["姓名"] == "张*"
        assert row["证件编号"].endswith("*") and len(row["证件编号"].rstrip("*")) == 6
        assert row["电子全文数"] == "3" and row["保管期限"] == "10年"
        assert row["封装包类型"] == ORIGINAL
    assert sorted(int(r["件号"]) for r in rows) == [1, 2]
    assert (Path(__file__).parents[2] / "docs/archive-catalogue.xsd").read_bytes() == (
        Path(fmt.__file__).parent / "schemas/catalogue.xsd"
    ).read_bytes()


def test_four_properties_report_passes_every_item(archived: Archived) -> None:
    report = json.loads((archived.package / "data" / fmt.REPORT_JSON).read_text("utf-8"))
    assert report["verdict"] == "PASSED"
    codes = {i["code"] for i in report["items"]}
    assert {"1-1", "1-2", "1-3", "2-1", "2-2", "3-1", "4-1", "4-2"} <= codes
    assert all(i["verdict"] in ("PASSED", "NOT_APPLICABLE") for i in report["items"])
    html = (archived.package / "data" / fmt.REPORT_HTML).read_text("utf-8")
    assert "四性检测报告" in html and "4-2" in html


def test_bagit_library_cli_validates_the_bag(archived: Archived) -> None:
    tool = Path(sys.executable).parent / "bagit.py"
    completed = subprocess.run(
        [str(tool), "--validate", str(archived.package)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "is valid" in completed.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_openssl_verifies_the_tag_manifest_signature(archived: Archived) -> None:
    completed = subprocess.run(
        [
            "openssl", "cms", "-verify", "-binary", "-inform", "DER",
            "-in", "tagmanifest-sha256.txt.p7s", "-content", "tagmanifest-sha256.txt",
            "-CAfile", str(archived.home / "pki" / "root.cert.pem"), "-out", "/dev/null",
        ],
        cwd=archived.package,
        capture_output=True,
        check=False,
        timeout=60,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert b"Verification successful" in completed.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_openssl_verifies_the_encapsulation_signature(archived: Archived, tmp_path: Path) -> None:
    """The 电子签名 of a DA/T 48 package is a detached CMS over the canonical XML of
    被签名对象: any C14N implementation (lxml here) and openssl check it."""
    number = archived.numbers[0]
    xml = (_donation(archived.package, number) / f"{number}{fmt.ENCAPSULATION_SUFFIX}").read_bytes()
    root = fmt.parse_xml(xml)
    (tmp_path / "signed.xml").write_bytes(fmt.c14n(root.find("被签名对象")))
    signature = root.find("电子签名块/电子签名/签名结果").text
    (tmp_path / "sig.p7s").write_bytes(base64.b64decode(signature))
    completed = subprocess.run(
        "openssl cms -verify -binary -inform DER -in sig.p7s -content signed.xml "
        f"-CAfile {archived.home / 'pki' / 'root.cert.pem'} -out /dev/null".split(),
        cwd=tmp_path,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr


def test_encapsulation_holds_the_forms_bytes(archived: Archived) -> None:
    number = archived.numbers[0]
    folder = _donation(archived.package, number)
    parsed = fmt.read_encapsulation((folder / f"{number}{fmt.ENCAPSULATION_SUFFIX}").read_bytes())
    assert parsed.package_type == ORIGINAL and parsed.donation_no == number
    assert parsed.forms == {p.name: p.read_bytes() for p in folder.glob("*.pdf")}


def test_each_archived_donation_has_a_signed_archive_event(archived: Archived) -> None:
    station = archived.station
    for number in archived.numbers:
        item: ArchiveItem = station.app.repository.get(
            archive_item_id_for(station.app.find_donation(number))
        )
        assert isinstance(item, ArchiveItem)
        assert item.last_package["package_id"] == archived.result.package_id
        assert item.archive_ref.endswith(f"-{item.catalogue_no:06d}")
    report = station.verifier().verify()
    assert report.ok, [f.describe() for f in report.issues()]


def test_verify_package_against_a_held_earlier_checkpoint(archived: Archived) -> None:
    held = SignedCheckpoint.from_json(json.loads(archived.checkpoint_before.read_text()))
    report = verify_package(archived.package, archived.station.trust_roots(), held=held)
    assert report.verdict is Verdict.PASSED, [f.describe() for f in report.issues()]


def test_held_checkpoint_newer_than_the_package_is_indeterminate(archived: Archived) -> None:
    newer = checkpoints.issue(archived.station)
    report = verify_package(archived.package, archived.station.trust_roots(), held=newer)
    assert report.verdict is Verdict.INDETERMINATE
    assert report.first_problem is not None
    assert report.first_problem.code is Code.PACKAGE_CHECKPOINT_UNPROVEN


def test_held_checkpoint_of_the_same_size_with_another_root_is_a_fork(archived: Archived) -> None:
    document = json.loads((archived.package / "data" / fmt.CHECKPOINT).read_text())
    document["root"] = "00" * 32
    forged = SignedCheckpoint.from_json(document)
    report = verify_package(archived.package, archived.station.trust_roots(), held=forged)
    codes = {f.code for f in report.findings}
    assert report.verdict is Verdict.FAILED
    assert {Code.CHECKPOINT_INVALID, Code.CHECKPOINT_INCONSISTENT} <= codes


def test_cli_verify_package_json(archived: Archived, capsys: pytest.CaptureFixture[str]) -> None:
    trust = archived.home / "pki" / "root.cert.pem"
    assert main(["verify-package", str(archived.package), "--trust", str(trust), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["kind"] == "package" and document["verdict"] == "PASSED"


def test_bad_input_is_refused_before_anything_is_written(archived: Archived) -> None:
    inbox = archived.package.parent
    before = sorted(p.name for p in inbox.iterdir())
    with pytest.raises(InputError, match="not an archivist"):
        archive_period(archived.station, ArchivePeriod(TODAY, TODAY, out=inbox, archivist="N001"))
    with pytest.raises(InputError, match="before"):
        archive_period(archived.station, ArchivePeriod(TODAY, date(2000, 1, 1), out=inbox))
    with pytest.raises(InputError, match="no credential"):
        archive_period(archived.station, ArchivePeriod(TODAY, TODAY, out=inbox, archivist="X9"))
    assert sorted(p.name for p in inbox.iterdir()) == before


# -- tampering: one test per way --------------------------------------------------------------


def test_flipped_byte_in_a_form_fails_naming_the_form(
    archived: Archived, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _copy(archived, tmp_path)
    number = archived.numbers[0]
    _flip(_donation(package, number) / f"{number}-consent.pdf")
    trust = archived.home / "pki" / "root.cert.pem"
    assert main(["verify-package", str(package), "--trust", str(trust)]) == 1
    out = capsys.readouterr().out
    assert f"{number}-consent.pdf" in out and "PACKAGE_FIXITY_MISMATCH" in out


def test_flipped_byte_in_an_encapsulation_package_fails(archived: Archived, tmp_path: Path) -> None:
    package = _copy(archived, tmp_path)
    number = archived.numbers[1]
    name = f"{number}{fmt.ENCAPSULATION_SUFFIX}"
    _flip(_donation(package, number) / name)
    _failed_naming(_verify(archived, package), Code.PACKAGE_FIXITY_MISMATCH, name)


def test_flipped_byte_in_an_evidence_event_fails(archived: Archived, tmp_path: Path) -> None:
    package = _copy(archived, tmp_path)
    evidence = _donation(package, archived.numbers[0]) / "evidence"
    event = sorted(evidence.glob("e*.json"))[2]
    _flip(event)
    report = _verify(archived, package)
    _failed_naming(report, Code.PACKAGE_FIXITY_MISMATCH, event.name)
    _failed_naming(report, Code.PACKAGE_EVIDENCE_INVALID, event.name)


def test_flipped_byte_in_the_checkpoint_fails(archived: Archived, tmp_path: Path) -> None:
    package = _copy(archived, tmp_path)
    path = package / "data" / fmt.CHECKPOINT
    text = path.read_text()
    size = json.loads(text)["size"]
    path.write_text(text.replace(f'"size": {size}', f'"size": {size - 1}'))
    report = _verify(archived, package)
    _failed_naming(report, Code.PACKAGE_FIXITY_MISMATCH, "checkpoint.json")
    _failed_naming(report, Code.CHECKPOINT_INVALID, "checkpoint.json")


def test_flipped_byte_in_the_inclusion_paths_fails(archived: Archived, tmp_path: Path) -> None:
    package = _copy(archived, tmp_path)
    path = package / "data" / fmt.INCLUSION
    document = json.loads(path.read_text())
    first = document["events"][0]
    first["inclusion_path"][0] = ("0" if first["inclusion_path"][0][0] != "0" else "1") + first[
        "inclusion_path"
    ][0][1:]
    path.write_text(json.dumps(document))
    report = _verify(archived, package)
    _failed_naming(report, Code.PACKAGE_FIXITY_MISMATCH, "inclusion-paths.json")
    _failed_naming(report, Code.PACKAGE_INCLUSION_INVALID, f"position {first['position']}")


def test_edited_catalogue_fails(archived: Archived, tmp_path: Path) -> None:
    package = _copy(archived, tmp_path)
    path = package / "data" / fmt.CATALOGUE_XML
    path.write_text(path.read_text("utf-8").replace("张*", "张三", 1), "utf-8")
    report = _verify(archived, package)
    _failed_naming(report, Code.PACKAGE_FIXITY_MISMATCH, fmt.CATALOGUE_XML)
    _failed_naming(report, Code.PACKAGE_CATALOGUE_INVALID, fmt.CATALOGUE_XML)


def test_edited_csv_catalogue_fails(archived: Archived, tmp_path: Path) -> None:
    package = _copy(archived, tmp_path)
    path = package / "data" / fmt.CATALOGUE_CSV
    path.write_bytes(path.read_bytes().replace("10年".encode(), "30年".encode(), 1))
    report = _verify(archived, package)
    _failed_naming(report, Code.PACKAGE_FIXITY_MISMATCH, "文件目录.CSV")
    _failed_naming(report, Code.PACKAGE_CATALOGUE_INVALID, "文件目录.CSV")


def test_removed_donation_folder_fails_naming_the_donation(
    archived: Archived, tmp_path: Path
) -> None:
    package = _copy(archived, tmp_path)
    number = archived.numbers[1]
    shutil.rmtree(_donation(package, number))
    report = _verify(archived, package)
    _failed_naming(report, Code.PACKAGE_DONATION_MISSING, number)
    _failed_naming(report, Code.PACKAGE_FILE_MISSING, number)


def test_edited_bag_info_fails(archived: Archived, tmp_path: Path) -> None:
    package = _copy(archived, tmp_path)
    path = package / "bag-info.txt"
    text = path.read_text("utf-8")
    path.write_text(text.replace("Donations-Archived: 2", "Donations-Archived: 3"))
    report = _verify(archived, package)
    _failed_naming(report, Code.PACKAGE_FIXITY_MISMATCH, "bag-info.txt")
    _failed_naming(report, Code.PACKAGE_BAG_INFO_MISMATCH, "bag-info.txt")


def test_tag_manifest_signature_replaced_by_another_signer_fails(
    archived: Archived, tmp_path: Path
) -> None:
    package = _copy(archived, tmp_path)
    nurse = archived.station.signer("N001")
    manifest = (package / "tagmanifest-sha256.txt").read_bytes()
    signature = base64.b64decode(nurse.sign(manifest, datetime.now(UTC)))
    (package / fmt.TAG_SIGNATURE).write_bytes(signature)
    report = _verify(archived, package)
    _failed_naming(report, Code.PACKAGE_SIGNATURE_INVALID, fmt.TAG_SIGNATURE)
    assert "not an archivist" in report.first_problem.message  # type: ignore[union-attr]


def test_removed_tag_manifest_signature_fails(archived: Archived, tmp_path: Path) -> None:
    package = _copy(archived, tmp_path)
    (package / fmt.TAG_SIGNATURE).unlink()
    _failed_naming(_verify(archived, package), Code.PACKAGE_SIGNATURE_INVALID, fmt.TAG_SIGNATURE)


def test_remanifested_bag_after_an_edit_fails_on_the_signature(
    archived: Archived, tmp_path: Path
) -> None:
    """An editor who rewrites the manifests (bagit's own save) keeps the bag valid for
    bagit, but not the archivist's signature over the tag manifest."""
    package = _copy(archived, tmp_path)
    readme = package / "data" / fmt.README
    readme.write_text(readme.read_text("utf-8") + "edited\r\n", "utf-8")
    bag = bagit.Bag(str(package))
    bag.save(manifests=True)
    bag.validate()
    report = _verify(archived, package)
    _failed_naming(report, Code.PACKAGE_SIGNATURE_INVALID, fmt.TAG_SIGNATURE)


def test_unexpected_file_in_the_payload_fails(archived: Archived, tmp_path: Path) -> None:
    package = _copy(archived, tmp_path)
    extra = _donation(package, archived.numbers[0]) / "extra.pdf"
    extra.write_bytes(b"%PDF-1.7\n")
    _failed_naming(_verify(archived, package), Code.PACKAGE_FILE_UNEXPECTED, "extra.pdf")


# -- the ledger side: nothing twice, the queue shrinks, amendments, the audit ------------------


def test_second_archive_of_the_period_archives_nothing(archived: Archived) -> None:
    again = archive_period(
        archived.station, ArchivePeriod(TODAY, TODAY, out=archived.package.parent)
    )
    assert again.package is None and again.count == 0
    assert not list(archived.package.parent.glob(".*.partial"))
    assert again.already_archived == 2
    assert [r.donation_no for r in again.refused] == [archived.incomplete]
    queue = archive._queue(archived.station)
    states = {d["donation_no"]: d["state"] for d in queue}
    assert [states[n] for n in archived.numbers] == ["archived", "archived"]
    assert states[archived.incomplete] == "queued"


def test_fixity_audit_records_the_outcome(archived: Archived, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(archived.package, inbox / archived.package.name)
    station = archived.station
    passed = archive.audit_archive(station, archive.AuditArchive(inbox))
    assert passed.outcome == "PASSED" and len(passed.packages) == 1
    _flip(_donation(inbox / archived.package.name, archived.numbers[0]) / "evidence/evidence.json")
    failed = archive.audit_archive(station, archive.AuditArchive(inbox))
    assert failed.outcome == "FAILED" and "evidence.json" in failed.packages[0][2]


def test_amendment_after_archiving_makes_a_supplementary_package(archived: Archived) -> None:
    station = archived.station
    number = archived.numbers[0]
    donation_id: UUID = station.app.find_donation(number)
    workflow.amend_temperature(station, donation_id, 36.8)
    queue = {d["donation_no"]: d for d in archive._queue(station)}
    assert queue[number]["state"] == "queued" and queue[number]["supplement"] is True
    result = archive_period(
        station, ArchivePeriod(TODAY, TODAY, out=archived.package.parent, zip=True)
    )
    assert result.supplements == (number,) and result.archived == ()
    assert result.package is not None and result.zip_path is not None
    with zipfile.ZipFile(result.zip_path) as bundle:
        assert f"{result.package.name}/bagit.txt" in bundle.namelist()
    folder = _donation(result.package, number)
    parsed = fmt.read_encapsulation((folder / f"{number}{fmt.ENCAPSULATION_SUFFIX}").read_bytes())
    assert parsed.package_type == AMENDED
    assert parsed.original is not None
    assert parsed.original.package_id == archived.result.package_id
    original = _donation(archived.package, number) / f"{number}{fmt.ENCAPSULATION_SUFFIX}"
    assert parsed.original.data == original.read_bytes()  # the original, wrapped
    item: ArchiveItem = station.app.repository.get(archive_item_id_for(donation_id))
    assert [p["package_type"] for p in item.packages] == [ORIGINAL, AMENDED]
    report = _verify(archived, result.package)
    assert report.verdict is Verdict.PASSED, [f.describe() for f in report.issues()]
    rows = fmt.read_catalogue_xml((result.package / "data" / fmt.CATALOGUE_XML).read_bytes())
    assert [(r["献血编号"], r["封装包类型"]) for r in rows] == [(number, AMENDED)]


class _NoTsa:
    """A stamper whose TSA never answers: pending events stay pending."""

    def flush(self) -> int:
        return 0


def test_a_donation_with_an_unstamped_event_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with Station.initialise(settings) as station:
        stamped, pending = _complete(station), _complete(station)
        station.stamper().flush()
        workflow.amend_temperature(station, pending, 36.7)  # after the last batch
        monkeypatch.setattr(station, "stamper", lambda: _NoTsa())
        result = archive_period(station, ArchivePeriod(TODAY, TODAY, out=tmp_path / "inbox"))
        assert result.archived == (workflow.number_for(stamped),)
        [refused] = result.refused
        assert refused.donation_no == workflow.number_for(pending)
        assert refused.reasons[0].startswith("pending timestamp: 1 events")


def test_demo_ends_by_archiving_its_day_and_verifying_the_package(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["demo", "--donations", "4", "--seed", "2"]) == 0
    first = " ".join(capsys.readouterr().out.split())
    assert "verify-package: OK" in first and "forms reused" in first, first
    assert main(["demo", "--donations", "3", "--seed", "2"]) == 0
    second = " ".join(capsys.readouterr().out.split())
    assert "verify-package: OK" in second and "archived before" in second, second
    inbox = cli_env / "home" / "archive-inbox"
    assert len([p for p in inbox.iterdir() if (p / "bagit.txt").is_file()]) == 2
    assert main(["archive", "--from", str(TODAY), "--to", str(TODAY)]) == 0
    assert "Nothing archived" in " ".join(capsys.readouterr().out.split())
