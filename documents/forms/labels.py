"""The words of the forms: titles, roles, meanings of signatures, questions, value names."""

from __future__ import annotations

from collections.abc import Mapping

from documents.forms.model import FormKind

TITLES: Mapping[FormKind, tuple[str, str]] = {
    FormKind.CONSENT: (
        "无偿献血者知情同意及健康状况征询表",
        "Informed consent and health questionnaire",
    ),
    FormKind.REGISTRATION: ("献血登记表", "Donation registration form"),
    FormKind.COLLECTION: ("成分血采集记录表", "Apheresis collection record"),
}

ROLES: Mapping[str, str] = {
    "registration_clerk": "登记员",
    "donor": "献血者",
    "examining_physician": "体检医师",
    "screening_technician": "初筛检验员",
    "evaluating_physician": "评估医师",
    "collection_nurse": "采血护士",
    "sealing_staff": "热合人员",
    "system": "献血信息系统",
    "administrator": "管理员",
    "quality_manager": "质控员",
}

#: Meaning of each signed step on a form (21 CFR 11.50(a)(3)).
MEANINGS: Mapping[str, str] = {
    "registration": "登记 registration",
    "informed_consent": "知情同意 consent",
    "informed_consent:examining_physician": "审核知情同意 consent review",
    "general_exam": "体检 examination",
    "pre_donation_test": "检测 test",
    "eligibility": "评估 assessment",
    "donation_number": "编号 numbering",
    "pre_collection": "采前核对 pre-check",
    "pre_collection:donor": "采前确认 pre-check confirmed",
    "collection": "采集 collection",
    "post_collection": "采后核对 post-check",
    "post_collection:donor": "采后确认 post-check confirmed",
    "heat_seal": "热合核对 heat seal",
    "reaction": "献血反应 reaction",
    "amendment": "更正 amendment",
    "sealed": "封存 record sealed",
}

#: The steps (and co-signature slots) each form shows.
FORM_STEPS: Mapping[FormKind, tuple[str, ...]] = {
    FormKind.CONSENT: ("informed_consent", "general_exam"),
    FormKind.REGISTRATION: ("registration", "donation_number"),
    FormKind.COLLECTION: (
        "pre_donation_test",
        "eligibility",
        "pre_collection",
        "collection",
        "post_collection",
        "heat_seal",
    ),
}

QUESTIONS: Mapping[str, str] = {
    "recent_illness": "近期是否患病",
    "medication_aspirin_7d": "7天内是否服用阿司匹林等药物",
    "dental_work_3d": "3天内是否拔牙或口腔治疗",
    "vaccination_recent": "近期是否接种疫苗",
    "travel_malaria_area": "是否到过疟疾流行区",
    "understood_risks": "是否已了解献血相关风险",
}

WORDS: Mapping[str, str] = {
    "M": "男",
    "F": "女",
    "resident_id": "居民身份证",
    "desk": "窗口登记",
    "kiosk": "自助机",
    "online": "网上填表",
    "wechat": "微信",
    "douyin_h5": "抖音H5",
    "app": "App",
    "platelets_single": "单采血小板 1治疗量",
    "platelets_double": "单采血小板 2治疗量",
    "platelets_plasma": "单采血小板+血浆",
    "plasma": "单采血浆",
    "eligible": "合格",
    "deferred": "暂缓献血",
    "completed": "完成",
    "pass": "合格",
    "fail": "不合格",
    "overridden": "超控放行",
    "acknowledged": "已确认",
    "negative": "阴性",
    "positive": "阳性",
    "vasovagal": "血管迷走神经反应",
    "citrate": "枸橼酸盐反应",
    "haematoma": "血肿",
    "mild": "轻度",
    "moderate": "中度",
    "severe": "重度",
    "recovered": "恢复",
}

AMENDED_MARK = "※"
AMENDED_NOTE = (
    f"{AMENDED_MARK} 该值在记录后经签名更正，显示当前值；"
    "更正经过见审计报告及附件中的 RecordAmended 事件。"
)
OVERRIDE_MARK = "超控"
OVERRIDE_NOTE = (
    f"{OVERRIDE_MARK}: 更正后的值未通过硬性控制点，由有权限的医师签名超控放行并注明原因；"
    "该值不视为合格。超控记录见 RecordAmended 事件。"
)
EVIDENCE_NOTE = (
    "本表由已封存的电子记录生成。附件(PDF/A-3 关联文件)含各事件的规范化 JSON (RFC 8785)、"
    "CMS 签名、批次时间戳 (RFC 3161) 与 Merkle 包含路径，可离线核验。"
)
DONOR_EVIDENCE_ONLY = "献血者已电子签名 (CAdES)，签名证据见附件"


#: The fixed labels and words of every form (to warm the font with).
FIXED_TEXT = "".join(
    [
        *(t for pair in TITLES.values() for t in pair),
        *ROLES.values(),
        *MEANINGS.values(),
        *QUESTIONS.values(),
        *WORDS.values(),
        AMENDED_NOTE,
        OVERRIDE_NOTE,
        EVIDENCE_NOTE,
        DONOR_EVIDENCE_ONLY,
        "献血者信息姓名性别出生日期证件类型号码编号健康状况征询知情同意声明本人已阅读并理解献血须知",
        "如实回答自愿无偿捐献成分血指纹核验签署时表单版本证书序列号一般检查体重收缩压舒张压脉搏次分",
        "体温结论所见不合格原因登记信息联系电话方式种类预约时间点标签已打印结果评估状态封存更正数",
        "检测血红蛋白红细胞压积小板平均积谷丙转氨酶乙肝表面抗原梅毒型仪器联网自动导入试剂批号计划",
        "治疗量浆预计采后超限批准医师暂缓前核对分离机耗材抗凝盐水穿刺致扫描条码数据开始束循环用含",
        "设备读取提示确认反应无未进行可信记录待定签名人角色含义缺签不需要站启用电子",
    ]
)
