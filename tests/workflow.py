"""Drive one donation through the workflow with plain, passing values (test helper)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from ledger.identity import check_char
from services.station import Station

FEMALE_ID = "11010519491231002X"  # GB 11643 sample value: female, born 1949-12-31
_donors = itertools.count(1)


def make_id(birth: date, sex: str, region: str = "330106", sequence: int = 12) -> str:
    first17 = f"{region}{birth:%Y%m%d}{sequence * 2 + (1 if sex == 'M' else 0):03d}"
    return first17 + check_char(first17)


def register(station: Station, *, sex: str = "F", birth: date | None = None, **kw: Any) -> UUID:
    """Register a visit; each call is a new donor unless ``id_number`` and ``birth`` are given."""
    if birth is None:  # a different donor each time, also across writer processes
        birth = date(1975, 1, 1) + timedelta(days=random.randrange(9000))
    fields: dict[str, Any] = {
        "channel": "desk",
        "id_type": "resident_id",
        "id_number": make_id(birth, sex, sequence=next(_donors) % 500),
        "name": "张三",
        "sex": sex,
        "birth_date": birth,
        "phone": "13800000000",
        "product": "platelets_single",
    }
    fields.update(kw)
    return station.app.register_donor(station.signer("C001"), **fields)


def through_test(station: Station, donation_id: UUID, *, hb: float = 130.0, **exam: Any) -> None:
    app = station.app
    donor = station.donor_signer(donation_id, fingerprint_verified=True)
    app.sign_consent(
        donation_id,
        donor,
        answers={"recent_illness": False},
        consent=True,
        fingerprint_verified=True,
        donor_certificate_serial=donor.certificate_serial,
    )
    values: dict[str, Any] = {
        "weight_kg": 60.0,
        "sbp_mmhg": 120,
        "dbp_mmhg": 80,
        "pulse_per_min": 72,
        "temperature_c": 36.6,
    }
    values.update(exam)
    app.record_exam(donation_id, station.signer("P001"), **values)
    app.record_test(
        donation_id,
        station.signer("T001"),
        hb_g_per_l=hb,
        hct_fraction=0.41,
        plt_10e9_per_l=250.0,
    )


def number_for(donation_id: UUID) -> str:
    return "9000626" + str(donation_id.int % 10**6).zfill(6)


def complete(station: Station, *, cosign: bool = True, volume: int = 260) -> UUID:
    """A whole donation: registered, examined, collected, checked and sealed."""
    app = station.app
    donation_id = register(station)
    through_test(station, donation_id)
    app.assess(donation_id, station.signer("P002"), decision="eligible")
    number = number_for(donation_id)
    app.assign_number(donation_id, station.system, number)
    nurse = station.signer("N001")
    scans = [f"BAG-{number}", f"TUBE-{number}"]
    app.verify_pre_collection(
        donation_id,
        nurse,
        scans=scans,
        separator_model="Trima Accel",
        separator_serial="SEP-1",
        kit_lot="K1",
        acd_lot="A1",
        saline_lot="S1",
        venipuncture_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    app.record_collection(
        donation_id,
        nurse,
        acknowledged=["collection.volume.plausible"] if volume > 550 else [],
        started_at="2026-11-22T08:00:00+00:00",
        ended_at="2026-11-22T09:10:00+00:00",
        processed_blood_ml=2800,
        acd_ml=300,
        product_volume_ml=volume,
        platelet_yield_10e11=2.8,
        doses=1,
        plasma_ml=0,
        auto_imported=True,
    )
    app.verify_post_collection(donation_id, nurse, scans)
    app.verify_heat_seal(donation_id, station.signer("S001"), scans)
    if cosign:
        app.apply_signature(
            donation_id, station.signer("P001"), "informed_consent:examining_physician"
        )
    app.seal(donation_id, station.system)
    return donation_id


def amend_temperature(
    station: Station,
    donation_id: UUID,
    new_value: float = 36.9,
    *,
    reason: str = "transcription error",
) -> None:
    """The examining physician corrects the general exam's temperature: a signed amendment."""
    station.app.amend(
        donation_id,
        station.signer("P001"),
        step="general_exam",
        field="temperature_c",
        new_value=new_value,
        reason=reason,
    )


def amend_argv(
    number: str,
    *,
    field: str = "temperature_c",
    value: str = "36.9",
    reason: str = "typo",
    staff: str = "P001",
) -> list[str]:
    """The `ledger amend` command line correcting a general-exam value of donation *number*."""
    return [
        *("amend", number, "--step", "general_exam", "--field", field, "--value", value),
        *("--reason", reason, "--staff", staff),
    ]
