"""The three forms' contents, from the DonationRecord view of a sealed donation.

Labels are the Chinese of the station's paper forms (seed 003: 无偿献血者知情同意及健康状况征询表,
献血登记表, and the apheresis collection record); the values are the record's current values,
with amended ones marked. Nothing here formats pages: see ``render.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from documents.forms.labels import (
    AMENDED_MARK,
    AMENDED_NOTE,
    DONOR_EVIDENCE_ONLY,
    EVIDENCE_NOTE,
    FIXED_TEXT,
    FORM_STEPS,
    MEANINGS,
    OVERRIDE_MARK,
    OVERRIDE_NOTE,
    QUESTIONS,
    ROLES,
    TITLES,
    WORDS,
)
from documents.forms.model import (
    Field,
    Form,
    FormKind,
    Header,
    Section,
    SignatureState,
    Signer,
)
from ledger.personal import mask_name
from projections.eventtime import STATION_TZ


@dataclass(frozen=True)
class Person:
    name: str
    role: str


@dataclass(frozen=True)
class EventInfo:
    """An event of the donation as the forms need it (from the ledger, with its position)."""

    position: int
    version: int
    event_type: str
    actor: str
    actor_role: str
    recorded_at: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class FormContext:
    """Everything a form is built from.

    `record` is the DonationRecord document (projections/donation_record.py); `people` maps a
    certificate subject (``STAFF:P001``) to its printed name and role; `trusted_times` maps a
    log position to the genTime of the timestamp batch holding it; `unsignable` maps a subject
    to the reason no PDF signature can be made for it now (the donor's credential is gone, a
    staff certificate is revoked); `system_subject` signs last, as the sealing system.
    """

    record: Mapping[str, Any]
    parameters: Mapping[str, Any]
    people: Mapping[str, Person]
    trusted_times: Mapping[int, str]
    events: Sequence[EventInfo]
    unsignable: Mapping[str, str]
    system_subject: str


def text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "、".join(text(v) for v in value) or "—"
    if isinstance(value, Mapping):
        return "；".join(f"{k} {text(v)}" for k, v in value.items()) or "—"
    return WORDS.get(str(value), str(value))


def when(iso: str | None) -> str:
    """An ISO 8601 instant in the station's civil time: ``YYYY-MM-DD HH:MM:SS +08:00``."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(STATION_TZ).strftime("%Y-%m-%d %H:%M:%S %z")[:-2] + ":00"


def mask_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


class _Builder:
    def __init__(self, ctx: FormContext, kind: FormKind) -> None:
        self.ctx = ctx
        self.kind = kind
        self.record = ctx.record
        self.steps: Mapping[str, Any] = ctx.record.get("steps", {})
        self.data: dict[str, Any] = {}

    def values(self, step: str) -> Mapping[str, Any]:
        entry = self.steps.get(step)
        return entry["values"] if entry else {}

    def field(
        self, step: str, name: str, label: str, unit: str = "", *, instant: bool = False, **kw: Any
    ) -> Field:
        entry = self.steps.get(step)
        raw = entry["values"].get(name) if entry else None
        shown = when(str(raw)) if instant and raw else text(raw)
        value = shown + (f" {unit}" if unit and raw not in (None, "") else "")
        amended = entry is not None and name in entry.get("amended_fields", ())
        self.data.setdefault(step, {})[name] = raw
        if amended:
            value = f"{value} {AMENDED_MARK}已更正"
        overridden = [o for o in (entry or {}).get("overrides", ()) if o["field"] == name]
        if overridden:
            value += f" {OVERRIDE_MARK} " + "、".join(o["rule_id"] for o in overridden)
        return Field(label, value, amended, **kw)

    def conclusion(self, step: str, name: str, label: str) -> Field:
        """A step's recorded conclusion, unless its current rule outcomes say otherwise: a hard
        rule failed, or overridden by an amendment, is never shown as 合格."""
        shown = self.field(step, name, label)
        entry = self.steps.get(step) or {}
        failed = [
            o["rule_id"] for o in entry.get("rules", {}).get("fired", ()) if o["outcome"] == "fail"
        ]
        overrides = entry.get("overrides", ())
        if failed:
            value = f"{WORDS['fail']} ({'、'.join(failed)})"
        elif overrides:
            value = f"{WORDS['overridden']} " + "；".join(
                f"{o['rule_id']} = {o['value']}，原因: {o['reason']}" for o in overrides
            )
        else:
            return shown
        self.data.setdefault(step, {})[f"{name}_by_rules"] = value
        return Field(label, value, shown.amended, wide=True)

    def recorded_by(self, step: str) -> str:
        entry = self.steps.get(step)
        if not entry:
            return "未进行 not reached"
        person = self.ctx.people.get(entry["actor"])
        name = person.name if person else entry["actor"]
        return f"{name} {when(entry['recorded_at'])}"

    def section(self, title: str, step: str, fields: Sequence[Field], note: str = "") -> Section:
        return Section(title, tuple(fields), note, self.recorded_by(step))

    # -- signers --------------------------------------------------------------------------------

    def signers(self) -> tuple[Signer, ...]:
        shown = FORM_STEPS[self.kind]
        acts: dict[str, list[tuple[str, int, str]]] = {}
        order: list[str] = []

        def act(subject: str, meaning: str, position: int, at: str) -> None:
            if subject not in acts:
                acts[subject] = []
                order.append(subject)
            acts[subject].append((meaning, position, at))

        for step in shown:
            entry = self.steps.get(step)
            if entry:
                act(entry["actor"], MEANINGS[step], entry["position"], entry["recorded_at"])
        if self.kind is FormKind.COLLECTION:
            for reaction in self.record.get("reactions", ()):
                act(
                    reaction["actor"],
                    MEANINGS["reaction"],
                    reaction["position"],
                    reaction["recorded_at"],
                )
        missing: list[Signer] = []
        for slot in self.record.get("slots", ()):
            if slot["step"] not in shown:
                continue
            if slot["state"] == "signed":
                act(
                    slot["signed_by"],
                    MEANINGS.get(slot["slot"], MEANINGS.get(slot["step"], "")),
                    slot["position"],
                    slot["signed_at"],
                )
            elif slot["state"] in ("missing", "not_required"):
                state = (
                    SignatureState.MISSING
                    if slot["state"] == "missing"
                    else SignatureState.NOT_REQUIRED
                )
                missing.append(
                    Signer(
                        key=_key(len(missing) + 90, slot["role"]),
                        subject_id="",
                        name="—",
                        role=ROLES.get(slot["role"], slot["role"]),
                        meaning=MEANINGS.get(slot["slot"], slot["slot"]),
                        signed_at="",
                        trusted_time="",
                        state=state,
                        reason="未签名 (封存时缺签)"
                        if state is SignatureState.MISSING
                        else "本站未启用电子签名",
                    )
                )
        for event in self.ctx.events:
            if event.event_type == "RecordAmended" and event.values.get("step") in shown:
                act(event.actor, MEANINGS["amendment"], event.position, event.recorded_at)
        sealed = self.record.get("sealed_position")
        if sealed:
            act(
                self.ctx.system_subject,
                MEANINGS["sealed"],
                int(sealed),
                str(self.record.get("sealed_at", "")),
            )

        out: list[Signer] = []
        for index, subject in enumerate(order, start=1):
            items = acts[subject]
            meanings = list(dict.fromkeys(m for m, _, _ in items))
            last = max(items, key=lambda item: item[1])
            person = self._person(subject)
            reason = self.ctx.unsignable.get(subject, "")
            out.append(
                Signer(
                    key=_key(index, subject),
                    subject_id=subject,
                    name=person.name,
                    role=person.role,
                    meaning="；".join(meanings),
                    signed_at=when(last[2]),
                    trusted_time=when(self.ctx.trusted_times.get(last[1], "")),
                    events=tuple(sorted({p for _, p, _ in items})),
                    state=SignatureState.EVIDENCE_ONLY if reason else SignatureState.PADES,
                    reason=reason,
                )
            )
        # The sealing system signs last: its signature is the one made B-LTA.
        out.sort(key=lambda s: s.subject_id == self.ctx.system_subject)
        return (*out, *missing)

    def _person(self, subject: str) -> Person:
        if subject in self.ctx.people:
            return self.ctx.people[subject]
        if subject.startswith("DONOR:"):
            identity = self.record.get("identity", {})
            return Person(str(identity.get("name", "献血者")), ROLES["donor"])
        return Person(subject, "")

    # -- the three forms ------------------------------------------------------------------------

    def identity(self) -> Section:
        identity = self.record.get("identity", {})
        # form.json is an attachment: the name only masked, with the key of the signed event's
        # name commitment so a checker can match the printed name (ledger.personal)
        attached = {k: v for k, v in identity.items() if k != "name"}
        attached["name_masked"] = mask_name(str(identity.get("name", "")))
        self.data["identity"] = attached
        fields = (
            Field("姓名", text(identity.get("name"))),
            Field("性别", text(identity.get("sex"))),
            Field("出生日期", text(identity.get("birth_date"))),
            Field("证件类型", text(identity.get("id_type"))),
            Field("证件号码", text(identity.get("id_number_masked"))),
            Field("献血编号", text(self.record.get("donation_no"))),
        )
        return Section("献血者信息 Donor", fields)

    def consent(self) -> list[Section]:
        consent = self.values("informed_consent")
        answers = consent.get("answers", {}) if consent else {}
        self.data["answers"] = dict(answers)
        questions = tuple(
            Field(QUESTIONS.get(key, key), text(value)) for key, value in answers.items()
        )
        exam = "general_exam"
        return [
            self.identity(),
            self.section(
                "健康状况征询 Health questionnaire",
                "informed_consent",
                questions or (Field("征询", "未填写 not answered", wide=True),),
            ),
            self.section(
                "知情同意 Consent",
                "informed_consent",
                (
                    Field(
                        "声明",
                        "本人已阅读并理解献血须知，如实回答健康征询，自愿无偿捐献成分血。",
                        wide=True,
                    ),
                    self.field("informed_consent", "consent", "同意献血"),
                    self.field("informed_consent", "fingerprint_verified", "指纹核验"),
                    self.field("informed_consent", "form_template_code", "签署时表单编号"),
                    self.field("informed_consent", "form_version", "表单版本"),
                    self.field(
                        "informed_consent",
                        "donor_certificate_serial",
                        "献血者证书序列号",
                        wide=True,
                    ),
                ),
            ),
            self.section(
                "一般检查 General examination",
                exam,
                (
                    self.field(exam, "weight_kg", "体重", "kg"),
                    self.field(exam, "sbp_mmhg", "收缩压", "mmHg"),
                    self.field(exam, "dbp_mmhg", "舒张压", "mmHg"),
                    self.field(exam, "pulse_per_min", "脉搏", "次/分"),
                    self.field(exam, "temperature_c", "体温", "°C"),
                    self.conclusion(exam, "result", "检查结论"),
                    self.field(exam, "findings", "体检所见", wide=True),
                    self.field(exam, "defer_reason", "不合格原因", wide=True),
                ),
            ),
        ]

    def registration(self) -> list[Section]:
        reg = "registration"
        values = self.values(reg)
        self.data.setdefault(reg, {})["phone_masked"] = mask_phone(str(values.get("phone", "")))
        return [
            self.identity(),
            self.section(
                "登记信息 Registration",
                reg,
                (
                    Field("联系电话", mask_phone(str(values.get("phone", "")))),
                    self.field(reg, "channel", "登记方式"),
                    self.field(reg, "product_requested", "献血种类"),
                    self.field(reg, "appointment_id", "预约号"),
                    Field("登记时间", when(self.steps.get(reg, {}).get("recorded_at"))),
                    self.field(reg, "station_id", "献血点"),
                ),
            ),
            self.section(
                "献血编号 Donation number",
                "donation_number",
                (
                    self.field("donation_number", "donation_no", "献血编号"),
                    self.field("donation_number", "label_set_printed", "标签已打印"),
                ),
            ),
            Section(
                "结果 Outcome",
                (
                    Field("评估结论", text(self.record.get("decision"))),
                    Field("记录状态", text(self.record.get("final_status"))),
                    Field("封存时间", when(str(self.record.get("sealed_at") or ""))),
                    Field("更正次数", str(self.record.get("amendments", 0))),
                ),
            ),
        ]

    def collection(self) -> list[Section]:
        test, ass, pre, col = "pre_donation_test", "eligibility", "pre_collection", "collection"
        test_fields = [
            self.field(test, "hb_g_per_l", "血红蛋白 Hb", "g/L"),
            self.field(test, "hct_fraction", "红细胞压积 HCT"),
            self.field(test, "plt_10e9_per_l", "血小板 PLT", "×10^9/L"),
        ]
        if self.values(test).get("mpv_fl") is not None or self.ctx.parameters.get("mpv_enabled"):
            test_fields.append(self.field(test, "mpv_fl", "平均血小板体积 MPV", "fL"))
        test_fields += [
            self.field(test, "alt_u_per_l", "谷丙转氨酶 ALT", "U/L"),
            self.field(test, "hbsag", "乙肝表面抗原 HBsAg"),
            self.field(test, "syphilis", "梅毒"),
            self.field(test, "abo", "ABO 血型"),
            self.field(test, "instrument_id", "检测仪器"),
            self.field(test, "auto_imported", "联网自动导入"),
            self.field(test, "reagent_lots", "试剂批号", wide=True),
        ]
        sections = [
            self.identity(),
            self.section("献血前检测 Pre-donation test", test, test_fields),
            self.section(
                "献血前评估 Assessment",
                ass,
                (
                    self.field(ass, "decision", "评估结论"),
                    self.field(ass, "planned_doses", "计划治疗量"),
                    self.field(ass, "planned_plasma_ml", "计划血浆量", "ml"),
                    self.field(ass, "predicted_post_plt_10e9_per_l", "预计采后PLT", "×10^9/L"),
                    self.field(ass, "overrides", "超限批准 (医师)", wide=True),
                    self.field(ass, "defer_reason", "暂缓原因", wide=True),
                ),
            ),
            self.section(
                "采前核对 Pre-collection check",
                pre,
                (
                    self.field(pre, "separator_model", "分离机型号"),
                    self.field(pre, "separator_serial", "分离机编号"),
                    self.field(pre, "kit_lot", "耗材批号"),
                    self.field(pre, "acd_lot", "抗凝剂批号"),
                    self.field(pre, "saline_lot", "盐水批号"),
                    self.field(pre, "venipuncture_at", "穿刺时间", instant=True),
                    self.field(pre, "labels_match", "标签一致"),
                    self.field(pre, "scans", "扫描条码", wide=True),
                ),
            ),
            self.section(
                "采集数据 Collection",
                col,
                (
                    self.field(col, "started_at", "开始时间", instant=True),
                    self.field(col, "ended_at", "结束时间", instant=True),
                    self.field(col, "processed_blood_ml", "循环血量", "ml"),
                    self.field(col, "acd_ml", "抗凝剂用量", "ml"),
                    self.field(col, "product_volume_ml", "采集量", "ml"),
                    self.field(col, "platelet_yield_10e11", "血小板含量", "×10^11"),
                    self.field(col, "doses", "治疗量"),
                    self.field(col, "plasma_ml", "血浆量", "ml"),
                    self.field(col, "auto_imported", "设备数据自动读取"),
                    Field("提示确认", _acknowledged(self.steps.get(col))),
                ),
            ),
        ]
        reactions = list(self.record.get("reactions", ()))
        self.data["reactions"] = [dict(r.get("values", {})) for r in reactions]
        reaction_fields = [
            Field(
                f"反应 {i}",
                "，".join(
                    when(str(r["values"].get(k))) if k == "onset_at" else text(r["values"].get(k))
                    for k in ("reaction_type", "severity", "onset_at", "treatment", "outcome")
                ),
                wide=True,
            )
            for i, r in enumerate(reactions, start=1)
        ] or [Field("献血反应", "无 none", wide=True)]
        sections.append(Section("献血反应 Adverse reactions", tuple(reaction_fields)))
        sections.append(
            self.section(
                "采后核对 Post-collection check",
                "post_collection",
                (
                    self.field("post_collection", "labels_match", "标签一致"),
                    self.field("post_collection", "scans", "扫描条码", wide=True),
                ),
            )
        )
        sections.append(
            self.section(
                "热合核对 Heat seal",
                "heat_seal",
                (
                    self.field("heat_seal", "labels_match", "标签一致"),
                    self.field("heat_seal", "scans", "扫描条码", wide=True),
                ),
            )
        )
        return sections


def _acknowledged(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "—"
    fired = entry.get("rules", {}).get("fired", [])
    items = [f"{o['rule_id']} ({o.get('value')})" for o in fired if o.get("outcome")]
    return "、".join(items) or "无"


def _key(index: int, subject: str) -> str:
    """A signature field name: ``S01_T001`` (staff id), ``S02_donor``, ``S90_donor`` (missing)."""
    kind, _, ident = subject.partition(":")
    slug = "donor" if kind == "DONOR" else re.sub(r"[^A-Za-z0-9]+", "_", ident or kind)
    return f"S{index:02d}_{slug.strip('_') or 'signer'}"[:48]


def build_form(kind: FormKind, ctx: FormContext) -> Form:
    """The form `kind` of the sealed donation in `ctx`."""
    builder = _Builder(ctx, kind)
    sections = {
        FormKind.CONSENT: builder.consent,
        FormKind.REGISTRATION: builder.registration,
        FormKind.COLLECTION: builder.collection,
    }[kind]()
    params = ctx.parameters
    consent = builder.values("informed_consent")
    code = str(params.get("form_template_code", ""))
    version = str(params.get("form_version", "1"))
    if kind is FormKind.CONSENT and consent:
        code = str(consent.get("form_template_code") or code)
        version = str(consent.get("form_version") or version)
    title, title_en = TITLES[kind]
    record = ctx.record
    header = Header(
        station_name=str(params.get("station_name", "")),
        department=str(params.get("department", "")),
        title=title,
        title_en=title_en,
        template_code=code,
        template_version=version,
        donation_no=str(record.get("donation_no") or "—"),
        phone_callback=str(params.get("form_phone_callback") or "—"),
        sealed_at=when(str(record.get("sealed_at") or "")),
        final_status=text(record.get("final_status")),
    )
    signers = builder.signers()
    notes = [EVIDENCE_NOTE]
    form = Form(kind, header, tuple(sections), signers, (), {})
    if form.amended:
        notes.insert(0, AMENDED_NOTE)
    overrides = {
        step: [dict(o) for o in entry["overrides"]]
        for step, entry in builder.steps.items()
        if entry.get("overrides") and step in FORM_STEPS[kind]
    }
    if overrides:
        notes.insert(0, OVERRIDE_NOTE)
    data = {
        "form": kind.value,
        "donation_id": str(record.get("donation_id", "")),
        "donation_no": header.donation_no,
        "template_code": code,
        "template_version": version,
        "values": builder.data,
        "amended_fields": {
            step: list(entry.get("amended_fields", ()))
            for step, entry in builder.steps.items()
            if entry.get("amended_fields")
        },
        "overrides": overrides,
        "signers": [
            {
                "field": s.key,
                "subject": s.subject_id,
                # the donor's name only masked in this attachment (the page prints it)
                "name": mask_name(s.name) if s.subject_id.startswith("DONOR:") else s.name,
                "role": s.role,
                "meaning": s.meaning,
                "state": s.state.value,
                "events": list(s.events),
                "trusted_time": s.trusted_time,
            }
            for s in signers
        ],
    }
    return Form(kind, header, tuple(sections), signers, tuple(notes), data)


__all__ = [
    "DONOR_EVIDENCE_ONLY",
    "FIXED_TEXT",
    "ROLES",
    "EventInfo",
    "FormContext",
    "Person",
    "build_form",
]
