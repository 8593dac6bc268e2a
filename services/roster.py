"""The demo station's staff: who signs which step (test and demo data only)."""

from __future__ import annotations

from typing import NamedTuple


class StaffMember(NamedTuple):
    staff_id: str
    name: str
    role: str


SYSTEM_STAFF_ID = "SYSTEM"

DEMO_STAFF: tuple[StaffMember, ...] = (
    StaffMember(SYSTEM_STAFF_ID, "献血信息系统", "system"),
    StaffMember("A001", "管理员", "administrator"),
    StaffMember("C001", "王登记", "registration_clerk"),
    StaffMember("P001", "李医师", "examining_physician"),
    StaffMember("P002", "赵评估", "evaluating_physician"),
    StaffMember("T001", "陈检验", "screening_technician"),
    StaffMember("N001", "周护士", "collection_nurse"),
    StaffMember("N002", "吴护士", "collection_nurse"),
    StaffMember("S001", "郑热合", "sealing_staff"),
    StaffMember("Q001", "钱质控", "quality_manager"),
    StaffMember("R001", "孙档案", "archivist"),  # signs transfer packages (services/archive.py)
    StaffMember("Z001", "孙招募", "recruiter"),  # signs contacts (services/recruitment.py)
)
