"""Archiving rules that need no station: active content in a PDF, the four-properties items
that block a package, the numbering rule, and the catalogue formats."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
import pytest

from documents import archive_package as fmt
from services.archive import Refused, _Prepared, _unsafe_content, four_properties


def _pdf(open_action: pikepdf.Dictionary | pikepdf.Array | None = None) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    if open_action is not None:
        pdf.Root.OpenAction = open_action
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_a_plain_pdf_and_an_open_action_destination_are_safe() -> None:
    assert _unsafe_content(_pdf()) == []
    pdf = pikepdf.open(io.BytesIO(_pdf()))
    destination = pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit])
    out = io.BytesIO()
    pdf.Root.OpenAction = destination
    pdf.save(out)
    assert _unsafe_content(out.getvalue()) == []


def test_javascript_open_action_is_active_content() -> None:
    action = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
    problems = _unsafe_content(_pdf(action))
    assert problems == ["active content: /JS, /JavaScript"]


def test_launch_action_is_active_content() -> None:
    action = pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("calc.exe"))
    assert _unsafe_content(_pdf(action)) == ["active content: /Launch"]


def _row(**changes: str) -> dict[str, str]:
    item = {
        "catalogue_no": 1,
        "archive_ref": "S-XF·2026-D10-000001",
        "year": 2026,
        "name": "张*",
        "retention": "10年",
        "collected_on": "2026-12-06",
        "id_type": "resident_id",
        "id_number_masked": "330106************",
        "donation_no": "9000626123456",
        "department": "献血服务二科",
        "forms": 3,
        "package_type": "原始型",
    }
    row = fmt.catalogue_row(item)
    row.update(changes)
    return row


def _report(tmp_path: Path, rows: list[dict[str, str]]) -> dict[str, object]:
    (tmp_path / "9000626123456").mkdir(exist_ok=True)
    prepared = [_Prepared("id", "9000626123456", forms=["a.pdf", "b.pdf", "c.pdf"])]
    return four_properties(
        "P",
        rows,
        fmt.catalogue_xml("P", rows),
        prepared,
        tmp_path,
        highest_before={},
        refused=[Refused("9000626999999", ("missing signature slot: x",))],
        now=datetime.now(UTC),
    )


def _verdicts(report: dict[str, object]) -> dict[str, str]:
    items = report["items"]
    assert isinstance(items, list)
    return {i["code"]: i["verdict"] for i in items}


def test_four_properties_pass_on_a_good_catalogue(tmp_path: Path) -> None:
    report = _report(tmp_path, [_row()])
    assert report["verdict"] == "PASSED", report
    assert _verdicts(report)["4-3"] == "NOT_APPLICABLE"


def test_unmasked_name_fails_item_4_2(tmp_path: Path) -> None:
    report = _report(tmp_path, [_row(姓名="张三")])
    assert report["verdict"] == "FAILED"
    assert _verdicts(report)["4-2"] == "FAILED"


def test_unmasked_id_number_fails_items_1_2_and_4_2(tmp_path: Path) -> None:
    report = _report(tmp_path, [_row(证件编号="33010619491231002X")])
    verdicts = _verdicts(report)
    assert verdicts["4-2"] == "FAILED" and verdicts["1-2"] == "FAILED"


def test_gap_in_catalogue_numbers_fails_item_2_2(tmp_path: Path) -> None:
    report = _report(tmp_path, [_row(件号="3")])
    assert _verdicts(report)["2-2"] == "FAILED"


def test_form_count_other_than_the_catalogue_fails_item_2_3(tmp_path: Path) -> None:
    report = _report(tmp_path, [_row(电子全文数="2")])
    assert _verdicts(report)["2-3"] == "FAILED"


def test_numbering_rule() -> None:
    assert fmt.archive_ref(fmt.DEFAULT_NUMBERING, station="ZJBC-01", year=2026, seq=7) == (
        "ZJBC-01-XF·2026-D10-000007"
    )
    with pytest.raises(ValueError, match="bad numbering rule"):
        fmt.archive_ref("{nope}", station="S", year=2026, seq=1)


def test_csv_catalogue_reads_back_as_the_xml() -> None:
    rows = [_row(), _row(件号="2", 献血编号="9000626123457")]
    assert fmt.read_catalogue_csv(fmt.catalogue_csv(rows)) == rows
    assert fmt.read_catalogue_xml(fmt.catalogue_xml("P", rows)) == rows


def test_merkle_log_paths_equal_the_reference() -> None:
    import hashlib

    from ledger.merkle import inclusion_proof, leaf_hash

    leaves = [leaf_hash(hashlib.sha256(bytes([i])).digest()) for i in range(37)]
    log = fmt.MerkleLog(leaves)
    assert all(log.path(i) == inclusion_proof(leaves, i) for i in range(37))


def _doc(day: str, department: str = "献血服务二科") -> dict[str, object]:
    return {"catalogue": {"collected_on": day, "department": department}, "sealed_at": ""}


def test_period_and_department_select_by_collection_day() -> None:
    from datetime import date

    from services.archive import ArchivePeriod, _in_period

    december = ArchivePeriod(date(2026, 12, 1), date(2026, 12, 31))
    assert _in_period(_doc("2026-12-01"), december) and _in_period(_doc("2026-12-31"), december)
    assert not _in_period(_doc("2026-11-30"), december)
    assert not _in_period(_doc("2027-01-01"), december)
    assert not _in_period(_doc(""), december)
    other = ArchivePeriod(date(2026, 12, 1), date(2026, 12, 31), department="献血服务一科")
    assert not _in_period(_doc("2026-12-05"), other)
    assert _in_period(_doc("2026-12-05", "献血服务一科"), other)
