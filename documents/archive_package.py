"""The formats of a transfer package (docs/archive.md): layout names, the catalogue (文件目录) as
XML and CSV, the per-donation encapsulation package after DA/T 48-2009, the four-properties
report page, and RFC 9162 inclusion paths to a checkpoint.

Producing and checking share this module so the two cannot drift apart; signing is passed in
(a callable), so the checking half (`documents.package_verify`) imports no signing code.

Signatures over XML are detached CMS SignedData (the same CAdES-BES as every ledger event) over
the W3C Canonical XML 1.0 bytes (lxml ``method="c14n"``, no comments) of the signed element:
see docs/archive.md for why not XML-DSig.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from lxml import etree

from ledger.merkle import node_hash

# -- layout (档发〔2012〕7号 transfer layout, inside the bag's data/) -----------------------------

README = "说明文件.TXT"
CATALOGUE_XML = "文件目录.XML"
RECORDS = "电子档案"
OTHER = "其他"
CATALOGUE_CSV = f"{OTHER}/文件目录.CSV"
CHECKPOINT = f"{OTHER}/checkpoint.json"
INCLUSION = f"{OTHER}/inclusion-paths.json"
CONSISTENCY = f"{OTHER}/consistency-proofs.json"
REPORT_JSON = f"{OTHER}/四性检测报告.json"
REPORT_HTML = f"{OTHER}/四性检测报告.html"
STATION_CHAIN = f"{OTHER}/station-chain.pem"
STATION_CRL = f"{OTHER}/station-crl.pem"
TAG_SIGNATURE = "tagmanifest-sha256.txt.p7s"
ENCAPSULATION_SUFFIX = "-封装包.xml"
EVIDENCE_DIR = "evidence"
EVIDENCE_INDEX = "evidence/evidence.json"

#: DA/T 48-2009 version written into 版本.
EEP_VERSION = "2009"
FORMAT_DESCRIPTION = (
    "本封装包遵循 DA/T 48-2009《基于XML的电子文件封装规范》生成，"
    "签名为 RFC 5652 分离式 CMS (CAdES-BES)，签名对象为 W3C Canonical XML 1.0 字节"
)
SIGNATURE_RULE = (
    "CMS SignedData detached (RFC 5652, CAdES-BES, SHA-256) over the W3C Canonical XML 1.0 "
    "bytes (no comments) of {what}"
)
ENCODING_DESCRIPTION = "本封装包中“编码数据”元素存储的是计算机文件二进制流的 Base64 编码"

#: The catalogue columns (shared/docs/domain.md §4), in order: (XML element = CSV header, key).
CATALOGUE_FIELDS: tuple[tuple[str, str], ...] = (
    ("件号", "catalogue_no"),
    ("档号", "archive_ref"),
    ("年度", "year"),
    ("姓名", "name"),
    ("保管期限", "retention"),
    ("采集时间", "collected_on"),
    ("证件类型", "id_type"),
    ("证件编号", "id_number_masked"),
    ("献血编号", "donation_no"),
    ("归档部门", "department"),
    ("电子全文数", "forms"),
    ("封装包类型", "package_type"),
)
ID_TYPES = {"resident_id": "身份证", "passport": "护照", "officer_id": "军官证"}
DEFAULT_NUMBERING = "{station}-XF·{year}-D10-{seq:06d}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class PackageFormatError(ValueError):
    """A package file that does not have the shape this module writes."""


def parse_xml(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise PackageFormatError(f"not well-formed XML: {exc}") from exc


def c14n(element: etree._Element) -> bytes:
    """W3C Canonical XML 1.0 (no comments) of one element: what the CMS signatures cover."""
    return bytes(etree.tostring(element, method="c14n", with_comments=False))


def _sub(parent: etree._Element, tag: str, text: object = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = str(text)
    return element


def archive_ref(rule: str, *, station: str, year: int, seq: int, department: str = "") -> str:
    """The archive reference (档号) of the `seq`-th item of `year` by a numbering rule (a
    ``str.format`` pattern over station, year, seq, department)."""
    try:
        return rule.format(station=station, year=year, seq=seq, department=department)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"bad numbering rule {rule!r}: {exc}") from exc


# -- the catalogue --------------------------------------------------------------------------------


def catalogue_row(item: Mapping[str, Any]) -> dict[str, str]:
    """A catalogue row as text, keyed by the Chinese column names."""
    row = {}
    for column, key in CATALOGUE_FIELDS:
        value = item.get(key, "")
        if key == "id_type":
            value = ID_TYPES.get(str(value), str(value))
        row[column] = "" if value is None else str(value)
    return row


def catalogue_xml(package_id: str, rows: Sequence[Mapping[str, str]]) -> bytes:
    root = etree.Element("文件目录", {"版本": "1", "包标识": package_id, "条目数": str(len(rows))})
    for row in rows:
        entry = _sub(root, "条目")
        for column, _ in CATALOGUE_FIELDS:
            _sub(entry, column, row[column])
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def catalogue_csv(rows: Sequence[Mapping[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column for column, _ in CATALOGUE_FIELDS])
    for row in rows:
        writer.writerow([row[column] for column, _ in CATALOGUE_FIELDS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # BOM: spreadsheet programs read UTF-8


def catalogue_schema() -> etree.XMLSchema:
    text = resources.files("documents").joinpath("schemas/catalogue.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(text, _PARSER))


def read_catalogue_xml(data: bytes) -> list[dict[str, str]]:
    root = parse_xml(data)
    return [{child.tag: child.text or "" for child in entry} for entry in root.iter("条目")]


def read_catalogue_csv(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8-sig")
    return [dict(row) for row in csv.DictReader(io.StringIO(text))]


# -- DA/T 48 encapsulation package ----------------------------------------------------------------


@dataclass(frozen=True)
class FormFile:
    name: str  # file name inside the donation folder
    title: str
    data: bytes


@dataclass(frozen=True)
class StepRecord:
    """One ledger event of the donation, as a 业务实体."""

    version: int
    event_type: str
    actor: str
    actor_role: str
    recorded_at: str
    event_hash: str
    position: int


@dataclass(frozen=True)
class Person:
    """A signer, as a 机构人员实体 (donors by masked name)."""

    subject_id: str
    name: str
    role: str


@dataclass(frozen=True)
class OriginalReference:
    """What a supplementary (修改型) package says about the package it supersedes."""

    package_id: str
    encapsulation_sha256: str
    donation_version: int
    data: bytes = b""  # the original encapsulation XML, when the archive still holds it


@dataclass(frozen=True)
class Encapsulation:
    donation_no: str
    catalogue: Mapping[str, str]
    station_name: str
    created_at: datetime
    forms: Sequence[FormFile]
    steps: Sequence[StepRecord]
    people: Sequence[Person]
    package_type: str = "原始型"
    original: OriginalReference | None = None
    donation_version: int = 0
    extra: Mapping[str, str] = field(default_factory=dict)


Sign = Callable[[bytes, datetime], bytes]
"""Detached CMS over the bytes at a time -> DER (the archivist's credential)."""


def encapsulate(
    content: Encapsulation,
    sign: Sign,
    signer_name: str,
    signer_certificate_der: bytes,
    algorithm: str,
) -> bytes:
    """The signed DA/T 48 encapsulation package of one donation, UTF-8 XML bytes."""
    root = etree.Element("电子文件封装包")
    _sub(root, "封装包格式描述", FORMAT_DESCRIPTION)
    _sub(root, "版本", EEP_VERSION)
    signed = _sub(root, "被签名对象", eep版本=EEP_VERSION)
    _sub(signed, "封装包类型", content.package_type)
    _sub(
        signed,
        "封装包类型描述",
        "本封装包包含电子文件数据及其元数据，原始封装，未经修改"
        if content.original is None
        else "本封装包包含修改后的电子文件数据及其元数据，并引用被修改的原封装包",
    )
    _sub(signed, "封装包创建时间", content.created_at.isoformat(timespec="seconds"))
    _sub(signed, "封装包创建单位", content.station_name)
    holder = _sub(signed, "封装内容")
    if content.original is not None:
        modified = _sub(holder, "修改封装内容")
        _sub(modified, "修改声明", "归档后形成修改记录 (RecordAmended)，按修改型封装补充归档")
        original = _sub(modified, "原封装包")
        _sub(original, "封装包标识", content.original.package_id)
        _sub(original, "封装包摘要", content.original.encapsulation_sha256, 算法="SHA-256")
        _sub(original, "记录版本", content.original.donation_version)
        if content.original.data:
            _sub(
                original,
                "封装包数据",
                base64.b64encode(content.original.data).decode("ascii"),
                编码="base64",
            )
        holder = _sub(modified, "修改后封装内容")
    _file_entity(_sub(holder, "文件实体块"), content)
    business = _sub(holder, "业务实体块")
    for step in content.steps:
        entity = _sub(business, "业务实体")
        _sub(entity, "业务标识符", f"V{step.version}")
        _sub(entity, "机构人员标识符", step.actor)
        _sub(entity, "业务状态", "完成")
        _sub(entity, "业务行为", step.event_type)
        _sub(entity, "行为时间", step.recorded_at)
        _sub(entity, "行为依据", f"账本事件 {step.event_hash} (SHA-256, RFC 8785)")
        _sub(entity, "行为描述", f"账本位置 {step.position}，角色 {step.actor_role}")
    people = _sub(holder, "机构人员实体块")
    for person in content.people:
        entity = _sub(people, "机构人员实体")
        _sub(entity, "机构人员标识符", person.subject_id)
        _sub(entity, "机构人员类型", "个人")
        _sub(entity, "机构人员名称", person.name)
        _sub(entity, "机构人员代码", person.subject_id.partition(":")[2])
        _sub(entity, "机构人员隶属", content.station_name)
        _sub(entity, "职位", person.role)
    when = content.created_at
    signatures = _sub(root, "电子签名块")
    _signature(
        _sub(signatures, "电子签名", 签名标识符="S1"),
        sign(c14n(signed), when),
        when,
        SIGNATURE_RULE.format(what="被签名对象"),
        signer_name,
        signer_certificate_der,
        algorithm,
    )
    lock = _sub(root, "锁定签名", 被锁定签名标识符="S1")
    _signature(
        lock,
        sign(c14n(signed) + c14n(signatures), when),
        when,
        SIGNATURE_RULE.format(what="被签名对象 followed by 电子签名块"),
        signer_name,
        signer_certificate_der,
        algorithm,
    )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _file_entity(block: etree._Element, content: Encapsulation) -> None:
    catalogue = content.catalogue
    entity = _sub(block, "文件实体")
    _sub(entity, "聚合层次", "件")
    source = _sub(entity, "来源")
    _sub(source, "立档单位名称", content.station_name)
    _sub(entity, "电子文件号", content.donation_no)
    _sub(entity, "档号", catalogue.get("档号", ""))
    description = _sub(entity, "内容描述")
    _sub(description, "题名", f"成分献血电子档案 献血编号 {content.donation_no}")
    _sub(description, "日期", catalogue.get("采集时间", ""))
    _sub(description, "记录版本", content.donation_version)
    for column, value in catalogue.items():
        _sub(description, "目录项", value, 名称=column)
    form = _sub(entity, "形式特征")
    _sub(form, "文件组合类型", "组合文件")
    _sub(form, "件数", len(content.forms))
    _sub(form, "保管期限", catalogue.get("保管期限", ""))
    storage = _sub(entity, "存储位置")
    _sub(storage, "在线存址", f"{RECORDS}/{content.donation_no}/")
    rights = _sub(entity, "权限管理")
    _sub(rights, "控制标识", "控制使用")
    data = _sub(entity, "文件数据")
    for number, form_file in enumerate(content.forms, 1):
        document = _sub(data, "文档", 文档标识符=f"D{number}")
        _sub(document, "文档序号", number)
        _sub(document, "文档主从声明", "主件" if number == 1 else "附件")
        _sub(document, "题名", form_file.title)
        document_data = _sub(document, "文档数据", 文档数据标识符=f"D{number}-1")
        encoding = _sub(document_data, "编码", 编码标识符=f"E{number}")
        properties = _sub(encoding, "电子属性")
        _sub(properties, "格式信息", "PDF/A-3b (ISO 19005-3)")
        _sub(properties, "计算机文件名", form_file.name)
        _sub(properties, "计算机文件大小", len(form_file.data))
        _sub(properties, "文档创建程序", "donation-ledger")
        _sub(properties, "摘要", hashlib.sha256(form_file.data).hexdigest(), 算法="SHA-256")
        _sub(encoding, "编码描述", ENCODING_DESCRIPTION)
        _sub(encoding, "反编码关键字", "base64")
        _sub(encoding, "编码数据", base64.b64encode(form_file.data).decode("ascii"))


def _signature(
    element: etree._Element,
    signature: bytes,
    when: datetime,
    rule: str,
    signer_name: str,
    certificate_der: bytes,
    algorithm: str,
) -> None:
    _sub(element, "签名规则", rule)
    _sub(element, "签名时间", when.isoformat(timespec="seconds"))
    _sub(element, "签名人", signer_name)
    _sub(element, "签名结果", base64.b64encode(signature).decode("ascii"))
    certificates = _sub(element, "证书块")
    _sub(certificates, "证书", base64.b64encode(certificate_der).decode("ascii"))
    _sub(element, "证书引证", "签名结果中的 CMS SignedData 携带签名人证书及其签发链")
    _sub(element, "签名算法标识", algorithm)


@dataclass(frozen=True)
class ParsedEncapsulation:
    package_type: str
    donation_no: str
    signed_bytes: bytes  # c14n of 被签名对象
    signature: bytes
    lock_bytes: bytes  # c14n of 被签名对象 + 电子签名块
    lock_signature: bytes
    forms: dict[str, bytes]  # 计算机文件名 -> decoded bytes
    original: OriginalReference | None


def read_encapsulation(data: bytes) -> ParsedEncapsulation:
    """Parse what `encapsulate` writes; `PackageFormatError` naming what is missing."""
    root = parse_xml(data)
    if root.tag != "电子文件封装包":
        raise PackageFormatError(f"root element is {root.tag}, not 电子文件封装包")
    signed = _one(root, "被签名对象")
    signatures = _one(root, "电子签名块")
    lock = _one(root, "锁定签名")
    forms: dict[str, bytes] = {}
    for encoding in signed.iter("编码"):
        name = _one(encoding, "电子属性/计算机文件名").text or ""
        try:
            forms[name] = base64.b64decode(_one(encoding, "编码数据").text or "", validate=True)
        except ValueError as exc:
            raise PackageFormatError(f"编码数据 of {name} is not Base64: {exc}") from exc
    original = None
    reference = signed.find("封装内容/修改封装内容/原封装包")
    if reference is not None:
        wrapped = reference.find("封装包数据")
        try:
            text = wrapped.text if wrapped is not None else ""
            data = base64.b64decode(text or "", validate=True)
        except ValueError as exc:
            raise PackageFormatError(f"封装包数据 is not Base64: {exc}") from exc
        original = OriginalReference(
            _one(reference, "封装包标识").text or "",
            _one(reference, "封装包摘要").text or "",
            int(_one(reference, "记录版本").text or 0),
            data,
        )
    try:
        signature = base64.b64decode(_one(signatures, "电子签名/签名结果").text or "")
        lock_signature = base64.b64decode(_one(lock, "签名结果").text or "")
    except ValueError as exc:
        raise PackageFormatError(f"签名结果 is not Base64: {exc}") from exc
    return ParsedEncapsulation(
        package_type=_one(signed, "封装包类型").text or "",
        donation_no=next((e.text or "" for e in signed.iter("电子文件号")), ""),
        signed_bytes=c14n(signed),
        signature=signature,
        lock_bytes=c14n(signed) + c14n(signatures),
        lock_signature=lock_signature,
        forms=forms,
        original=original,
    )


def _one(parent: etree._Element, path: str) -> etree._Element:
    found = parent.find(path)
    if found is None:
        raise PackageFormatError(f"no {path} under {parent.tag}")
    return found


# -- inclusion paths to a checkpoint ---------------------------------------------------------------


class MerkleLog:
    """RFC 6962 subtree roots of one log, cached: many inclusion paths in O(n log n)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self._roots: dict[tuple[int, int], bytes] = {}

    def root(self, start: int, end: int) -> bytes:
        if end - start == 1:
            return self.leaves[start]
        key = (start, end)
        if key not in self._roots:
            split = start + _largest_power_of_two_below(end - start)
            self._roots[key] = node_hash(self.root(start, split), self.root(split, end))
        return self._roots[key]

    def path(self, index: int) -> list[bytes]:
        """``PATH(index, D[n])`` (RFC 9162 §2.1.3.1), leaf to root."""
        siblings: list[bytes] = []
        start, end = 0, len(self.leaves)
        while end - start > 1:
            split = start + _largest_power_of_two_below(end - start)
            if index < split:
                siblings.append(self.root(split, end))
                end = split
            else:
                siblings.append(self.root(start, split))
                start = split
        siblings.reverse()
        return siblings


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


# -- the four-properties report page ---------------------------------------------------------------

PROPERTY_NAMES = {"1": "真实性", "2": "完整性", "3": "可用性", "4": "安全性"}


def report_html(report: Mapping[str, Any]) -> bytes:
    """A page a person reads: one table row per check item, its verdict and evidence."""
    e = html.escape
    rows = "\n".join(
        f"<tr class='{e(str(item['verdict']))}'><td>{e(str(item['code']))}</td>"
        f"<td>{e(PROPERTY_NAMES.get(str(item['code'])[:1], ''))}</td>"
        f"<td>{e(str(item['item']))}</td><td>{e(str(item['verdict']))}</td>"
        f"<td>{e(str(item['evidence']))}</td></tr>"
        for item in report["items"]
    )
    page = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>四性检测报告 {e(str(report["package_id"]))}</title>
<style>body{{font-family:sans-serif}} td,th{{border:1px solid #999;padding:4px}}
table{{border-collapse:collapse}} .FAILED{{background:#fdd}} .PASSED{{background:#efe}}</style>
</head><body>
<h1>电子档案四性检测报告 (DA/T 70-2018)</h1>
<p>封装包 {e(str(report["package_id"]))}；检测环节 {e(str(report["stage"]))}；
检测时间 {e(str(report["checked_at"]))}；结论 <b>{e(str(report["verdict"]))}</b>；
件数 {e(str(report["items_checked"]))}</p>
<table><tr><th>编号</th><th>性质</th><th>检测项目</th><th>结论</th><th>依据</th></tr>
{rows}
</table></body></html>
"""
    return page.encode("utf-8")
