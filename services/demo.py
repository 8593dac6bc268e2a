"""A simulated day at the apheresis room: donors through every step, with the usual exceptions.

Deterministic for a seed (values, not timestamps or keys): a few deferrals by hard
rules, plausibility alerts acknowledged, a physician's override, adverse reactions,
amendments and missing co-signatures.

A day can follow earlier days in the same ledger (``make demo`` run twice): on a ledger that
already holds donations the seed is salted with the ledger's size, so the donors are new people
(not the same ones back within the 14-day platelet interval), and before anything is written
`DemoDay.run` reserves a block of donation numbers none of which the ledger holds yet.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

from eventsourcing.utils import get_topic

from documents.forms.fonts import form_font
from ledger.donation import Donation, Step
from ledger.events import WorkflowError
from ledger.identity import check_char
from ledger.registry import number_index_id_for
from ledger.signer import CredentialSigner
from ledger.timestamping import StamperThread
from ledger.verify import VerificationReport
from projections.eventtime import station_today
from services import booking, booking_slots, donor_history
from services.booking_slots import SlotFull
from services.checkpoints import default_checkpoint_path, write_checkpoint_file
from services.forms import producer_for
from services.matching import RecordTyping, record_typing
from services.recruitment import RecordContact, record_contact
from services.settings import Settings
from services.station import Station, StationNotInitialised
from services.users import UserStore
from services.verification import verify_station
from signing.errors import InputError

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "霞",
]
#: Names with characters beyond GB2312 (CJK extension A/B), as real registers hold.
RARE_NAMES = ["王𬌗", "李㛃", "陈䶮"]
REGIONS = ["330102", "330105", "330106", "330108", "330109", "330110"]
ANSWERS = {
    "recent_illness": False,
    "medication_aspirin_7d": False,
    "dental_work_3d": False,
    "vaccination_recent": False,
    "travel_malaria_area": False,
    "understood_risks": True,
}
#: The slot schedule the demo publishes on a store that has none: hourly slots of 12 places.
DEMO_SCHEDULE = {
    "version": "demo-1",
    "effective_from": "2000-01-01",
    "weekdays": {
        day: {f"{hour:02d}:00": 12 for hour in range(8, 17) if hour != 12}
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    },
    "holidays": {},
}
#: Share of the day's donors who booked a slot (the seed reports 84.3% for 2022).
BOOKED_SHARE = 0.8
#: Share of the day's donors the regional history reports a donation elsewhere for.
REGIONAL_SHARE = 0.1
#: Share of the day's donors the recruiter calls after their visit, for the next donation.
CONTACTED_SHARE = 0.3
#: The laboratory (T001) records the HLA/HPA typing of every sixth donor of the day (the first
#: included), after the visit.
TYPE_EVERY = 6
HLA_A = ["A*02", "A*11", "A*24", "A*33", "A*01", "A*03"]
HLA_B = ["B*46", "B*40", "B*13", "B*58", "B*51", "B*15"]
HPA_GENOTYPES = {"HPA-1": ["aa", "aa", "aa", "ab"], "HPA-2": ["aa", "aa", "ab"],
                 "HPA-3": ["aa", "ab", "bb"], "HPA-15": ["aa", "ab", "bb"]}  # fmt: skip
CONTACT_OUTCOMES = [
    ("agreed", ""),
    ("agreed", ""),
    ("declined", "出差两个月 (away on business)"),
    ("unreachable", "无人接听 (no answer)"),
]


@dataclass
class DemoSummary:
    donations: int = 0
    completed: int = 0
    deferred: int = 0
    deferral_reasons: Counter[str] = field(default_factory=Counter)
    alerts_acknowledged: int = 0
    overrides: int = 0
    reactions: int = 0
    amendments: int = 0
    missing_slots: int = 0
    repeat_donors: int = 0
    #: Registrations checked against the regional donor history (the local HTTP stand-in).
    history_checked: int = 0
    #: Donors booked into a time slot before the day (through a booking channel).
    booked: int = 0
    #: Donors the recruiter (Z001) called after their visit, by outcome.
    contacted: Counter[str] = field(default_factory=Counter)
    #: Donors whose HLA/HPA typing the laboratory (T001) recorded (matched recruitment).
    typed: int = 0


def resident_id(rng: random.Random, birth: date, sex: str) -> str:
    sequence = rng.randrange(0, 500) * 2 + (1 if sex == "M" else 0)
    first17 = f"{rng.choice(REGIONS)}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)


#: The last six digits of a donation number (90006 YY NNNNNN) are the day's sequence.
SEQUENCE_LIMIT = 999_999
#: The most donations one simulated day may hold (so a fresh ledger always has the numbers).
MAX_DONATIONS = 100_000


def ledger_holds_donations(station: Station) -> bool:
    """True when the ledger already holds a donation (an earlier simulated or real day)."""
    topic = get_topic(Donation.DonorRegistered)
    return bool(station.app.recorder.select_notifications(1, 1, topics=[topic]))


def free_sequence_block(station: Station, start: int, count: int, year: int) -> int:
    """The first sequence ``s >= start`` (else ``s >= 0``) such that the numbers ``s+1 ..
    s+count`` of `year` are all unassigned in the ledger (a read-only look-up per number, made
    before any write)."""
    recorder = station.app.recorder
    for candidate in (start, 0):
        while candidate + count <= SEQUENCE_LIMIT:
            taken = [
                sequence
                for sequence in range(candidate + 1, candidate + count + 1)
                if recorder.select_events(
                    number_index_id_for(f"90006{year % 100:02d}{sequence:06d}"), limit=1
                )
            ]
            if not taken:
                return candidate
            candidate = taken[-1]
    raise WorkflowError(
        f"no run of {count} free donation numbers left for {year} after sequence {start}"
    )


class DemoDay:
    def __init__(self, station: Station, seed: int) -> None:
        self.station = station
        # A fresh ledger keeps the plain seed (the same day as ever); a ledger with earlier
        # days gets a stream of its own, so today's donors are not yesterday's.
        salt = station.app.recorder.max_notification_id() if ledger_holds_donations(station) else 0
        self.rng = random.Random(seed if not salt else f"{seed}:{salt}")
        self.summary = DemoSummary()
        self.today = station_today()  # the station's day: its slots and reports count it
        self.sequence = self.rng.randrange(100000, 800000)
        self.donors: list[tuple[str, str, str, date]] = []
        #: Sealed donations and, while this process holds it, the donor's signer (for the forms).
        self.sealed: list[tuple[UUID, CredentialSigner | None]] = []
        self.current_donor: CredentialSigner | None = None
        #: Booking and recruitment draw from a stream of their own (deterministic by the seed).
        self.side_rng = random.Random(f"{seed}:booking:{salt}")
        self.store = UserStore(station.settings.db)
        #: The regional donor-history service (set by `run_demo` to the local stand-in).
        self.region: donor_history.StandInServer | None = None
        #: The day's donors, drawn before the day, and the appointment each booked (or None).
        self.queue: list[tuple[tuple[str, str, str, date], str | None, str]] = []

    def reserve_numbers(self, donations: int) -> None:
        """Move the day's number sequence past any number the ledger already holds (reads only:
        a clash found later would leave a donation half-recorded)."""
        self.sequence = free_sequence_block(self.station, self.sequence, donations, self.today.year)

    def run(self, donations: int, progress: Callable[[], None] | None = None) -> DemoSummary:
        self.reserve_numbers(donations)
        self.book(donations)
        for _ in range(donations):
            self.one()
            if progress is not None:
                progress()
        self.recruit()
        return self.summary

    def book(self, donations: int) -> None:
        """Before the day: the donors who will come, most of them booked into today's slots
        through a booking channel (the service the channel endpoints call; capacity counted).
        A donor already booked today (a repeat donor) or a full day comes without a booking."""
        rng = self.side_rng
        with self.store.transaction() as run:
            booking_slots.ensure_tables(run)
            if not run("SELECT 1 FROM booking_schedules LIMIT 1"):
                booking_slots.publish_schedule(run, DEMO_SCHEDULE, "demo")
        starts = sorted(DEMO_SCHEDULE["weekdays"]["mon"])  # type: ignore[index]
        for _ in range(donations):
            donor = self._donor()
            appointment, channel = None, ""
            if rng.random() < BOOKED_SHARE:
                channel = rng.choice(["wechat", "wechat", "baidu", "douyin", "h5"])
                id_number, _, sex, birth = donor
                command = booking.BookAppointment(
                    channel, "resident_id", id_number, sex, birth,  # type: ignore[arg-type]
                    self.today, slot=rng.choice(starts),
                )  # fmt: skip
                try:
                    appointment = booking.book_appointment(
                        self.station, self.store, command
                    ).appointment_id
                    self.summary.booked += 1
                except (SlotFull, InputError):
                    appointment = None  # full slot, or already booked today: a walk-in
            self.queue.append((donor, appointment, channel))
            if self.region is not None and rng.random() < REGIONAL_SHARE:
                # donated elsewhere in the province 20 to 400 days ago (no interval clash)
                self.region.records[donor[0]] = {"donations": [{
                    "date": (self.today - timedelta(days=rng.randint(20, 400))).isoformat(),
                    "product": rng.choice(["platelets_single", "whole_blood"]),
                    "site": rng.choice(["温州中心血站", "宁波市中心血站"])}]}  # fmt: skip

    def recruit(self) -> None:
        """After the day: the recruiter (Z001) calls some of the day's donors for their next
        donation, each call a signed `RecruitmentContacted`; the laboratory (T001) records the
        HLA/HPA typing of some (a signed `DonorTyped`), for matched recruitment."""
        rng = self.side_rng
        called: set[str] = set()
        typed: set[str] = set()
        for (id_number, *_), _, _ in self.queue:
            if id_number in called or rng.random() >= CONTACTED_SHARE:
                continue
            called.add(id_number)
            outcome, reason = rng.choice(CONTACT_OUTCOMES)
            record_contact(
                self.station,
                RecordContact("Z001", id_number, rng.choice(["phone", "sms", "app"]), outcome,
                              reason),
            )  # fmt: skip
            self.summary.contacted[outcome] += 1
        for i, ((id_number, *_), _, _) in enumerate(self.queue):
            if id_number in typed or i % TYPE_EVERY:
                continue
            typed.add(id_number)
            hla = rng.sample(HLA_A, 2) + rng.sample(HLA_B, 2)
            hpa = [f"{system}:{rng.choice(kinds)}" for system, kinds in HPA_GENOTYPES.items()]
            record_typing(
                self.station,
                RecordTyping("T001", id_number, " ".join(hla), " ".join(hpa),
                             "浙江省血液中心 HLA 实验室", "PCR-SSO"),
            )  # fmt: skip
            self.summary.typed += 1

    def _donor(self) -> tuple[str, str, str, date]:
        rng = self.rng
        if self.donors and rng.random() < 0.04:
            self.summary.repeat_donors += 1
            return rng.choice(self.donors)
        sex = rng.choice("MF")
        name = (
            rng.choice(RARE_NAMES)
            if rng.random() < 0.03
            else (
                rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
            )
        )
        birth = self.today - timedelta(days=rng.randint(19 * 366, 54 * 365))
        donor = (resident_id(rng, birth, sex), name, sex, birth)
        self.donors.append(donor)
        return donor

    def one(self) -> None:
        rng, st, app = self.rng, self.station, self.station.app
        summary = self.summary
        summary.donations += 1
        (id_number, name, sex, birth), appointment, booked_via = self.queue[summary.donations - 1]
        channel = rng.choice(["desk", "kiosk", "online", "wechat", "douyin_h5", "online"])
        if appointment is not None:
            channel = booking.CHANNELS[booked_via]  # registered at the desk from the booking
        registrar = st.signer("C001") if channel == "desk" or appointment else st.system
        donation_id = app.register_donor(
            registrar,
            channel=channel,
            id_type="resident_id",
            id_number=id_number,
            name=name,
            sex=sex,
            birth_date=birth,
            phone=f"13{rng.randrange(10**8, 10**9)}",
            product=rng.choice(["platelets_single", "platelets_double", "platelets_plasma"]),
            appointment_id=appointment,
        )
        if appointment is not None:
            booking.appointment_registered(self.store, appointment)
        if self.region is not None:
            source = donor_history.HttpDonorHistorySource(self.region.url)
            answer = donor_history.ask(source, "resident_id", id_number)
            donor_history.record_answer(st, answer, donation_id)
            summary.history_checked += 1
        donor = st.donor_signer(donation_id, fingerprint_verified=rng.random() < 0.9)
        self.current_donor = donor
        app.sign_consent(
            donation_id,
            donor,
            answers=ANSWERS,
            consent=True,
            fingerprint_verified=True,
            donor_certificate_serial=donor.certificate_serial,
        )
        self._cosign(donation_id, "informed_consent:examining_physician", "P001")
        low_weight = rng.random() < 0.02
        app.record_exam(
            donation_id,
            st.signer("P001"),
            weight_kg=round(rng.uniform(40.0, 44.5) if low_weight else rng.uniform(52, 85), 1),
            sbp_mmhg=(sbp := rng.randint(104, 136)),
            dbp_mmhg=min(88, max(62, sbp - rng.randint(34, 50))) if rng.random() > 0.01 else 58,
            pulse_per_min=rng.randint(64, 92),
            temperature_c=round(rng.uniform(36.1, 37.2), 1),
            findings="皮肤无黄染，穿刺部位无异常",
        )
        donation = app.donation(donation_id)
        if donation.steps[Step.EXAM]["values"]["result"] == "fail":
            self._defer(donation_id, ", ".join(o["rule_id"] for o in donation.prior_failures()))
            return
        low_hb = rng.random() < 0.04
        hb = rng.uniform(105, 114) if low_hb else rng.uniform(125, 160)
        plt_value = round(rng.uniform(180, 380), 0)
        high_plt = rng.random() < 0.01
        app.record_test(
            donation_id,
            st.signer("T001"),
            hb_g_per_l=round(hb, 0),
            hct_fraction=round(rng.uniform(0.37, 0.47), 2),
            plt_10e9_per_l=452.0 if high_plt else plt_value,
            alt_u_per_l=round(rng.uniform(8, 38), 0),
            abo=rng.choice(["A", "B", "O", "AB"]),
            instrument_id="XN-1000-0417",
            reagent_lots={"cellpack": "C2611A", "hbsag_strip": "H2610B"},
        )
        doses = 2 if donation.product == "platelets_double" else 1
        plasma = 200 if donation.product == "platelets_plasma" else 0
        donation = app.donation(donation_id)
        failures = [o["rule_id"] for o in donation.prior_failures()]
        history = app.history_values(donation, plasma)
        interval = history["days_since_last_platelet_donation"]
        if interval is not None and interval < 14:
            failures.append("interval.platelets.after_platelets")
        whole_blood = history.get("days_since_last_whole_blood_donation")
        if whole_blood is not None and whole_blood < 90:
            failures.append("interval.whole_blood_to_platelets.min")
        overrides = {}
        if failures == ["plt.max"]:
            overrides = {"plt.max": "复测 448 (second analyser), physician approves"}
            summary.overrides += 1
        elif failures:
            self._defer(donation_id, ", ".join(failures))
            return
        app.assess(
            donation_id,
            st.signer("P002"),
            decision="eligible",
            planned_doses=doses,
            planned_plasma_ml=plasma,
            overrides=overrides,
        )
        self.sequence += 1
        number = f"90006{self.today:%y}{self.sequence:06d}"
        app.assign_number(donation_id, st.system, number)
        nurse = st.signer(rng.choice(["N001", "N002"]))
        scans = [f"BAG-{number}", f"TUBE-{number}", f"SAMPLE-{number}"]
        app.verify_pre_collection(
            donation_id,
            nurse,
            scans=scans,
            separator_model=rng.choice(["Trima Accel", "Amicus", "MCS+"]),
            separator_serial=f"SEP-{rng.randrange(100, 999)}",
            kit_lot="K2611-07",
            acd_lot="ACD2610-3",
            saline_lot="NS2611-1",
            venipuncture_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._cosign(donation_id, "pre_collection:donor", donor)
        volume = rng.randint(560, 590) if rng.random() < 0.03 else rng.randint(230, 300)
        acknowledged = ["collection.volume.plausible"] if volume > 550 else []
        summary.alerts_acknowledged += len(acknowledged)
        started = datetime.now(UTC)
        app.record_collection(
            donation_id,
            nurse,
            acknowledged=acknowledged,
            started_at=started.isoformat(timespec="seconds"),
            ended_at=(started + timedelta(minutes=rng.randint(55, 95))).isoformat(
                timespec="seconds"
            ),
            processed_blood_ml=rng.randint(2200, 3600),
            acd_ml=rng.randint(230, 380),
            product_volume_ml=volume,
            platelet_yield_10e11=round(rng.uniform(2.5, 3.2) * doses, 2),
            doses=doses,
            plasma_ml=plasma,
            auto_imported=True,
        )
        if rng.random() < 0.04:
            app.record_reaction(
                donation_id,
                nurse,
                reaction_type=rng.choice(["vasovagal", "citrate", "haematoma"]),
                severity="mild",
                onset_at=datetime.now(UTC).isoformat(timespec="seconds"),
                treatment="平卧休息，口服葡萄糖酸钙",
                outcome="recovered",
            )
            summary.reactions += 1
        app.verify_post_collection(donation_id, nurse, scans)
        self._cosign(donation_id, "post_collection:donor", donor)
        app.verify_heat_seal(donation_id, st.signer("S001"), scans)
        if rng.random() < 0.05:
            app.amend(
                donation_id,
                st.signer("P001"),
                step=Step.EXAM,
                field="temperature_c",
                new_value=round(
                    float(app.donation(donation_id).steps[Step.EXAM]["values"]["temperature_c"])
                    + 0.2,
                    1,
                ),
                reason="体温录入错误，按体温计读数更正 (transcription error)",
            )
            summary.amendments += 1
        self._seal(donation_id, donor)
        summary.completed += 1

    def _cosign(self, donation_id: UUID, slot: str, who: object) -> None:
        if self.rng.random() < 0.02:
            return  # never signed: a missing slot at sealing
        signer = self.station.signer(who) if isinstance(who, str) else who
        self.station.app.apply_signature(donation_id, signer, slot)  # type: ignore[arg-type]

    def _defer(self, donation_id: UUID, reason: str) -> None:
        self.station.app.assess(
            donation_id,
            self.station.signer("P002"),
            decision="deferred",
            defer_reason=reason,
        )
        self.summary.deferred += 1
        for rule_id in reason.split(", "):
            self.summary.deferral_reasons[rule_id] += 1
        self._seal(donation_id, self.current_donor)

    def _seal(self, donation_id: UUID, donor: CredentialSigner | None = None) -> None:
        app = self.station.app
        self.summary.missing_slots += len(app.donation(donation_id).missing_slots())
        app.seal(donation_id, self.station.system)
        self.sealed.append((donation_id, donor))


# -- the `ledger demo` use case ------------------------------------------------------------------

#: ``progress(label, done, total)``: how the day and its forms advance.
DemoProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunDemo:
    """Command: simulate a day of `donations` donations (deterministic for `seed`), with the
    signed forms of every sealed donation unless `forms` is False."""

    donations: int
    seed: int = 1
    forms: bool = True


@dataclass(frozen=True)
class DemoRun:
    seed: int
    summary: DemoSummary
    #: True when no station existed under LEDGER_HOME and the demo made one.
    initialised: bool
    forms_written: int
    forms_dir: Path
    tsa_requests: int
    checkpoint_size: int
    checkpoint_file: Path
    seconds: float
    #: The whole ledger verified after the day (`ledger verify`'s report).
    report: VerificationReport
    verify_seconds: float


def run_demo(settings: Settings, command: RunDemo, progress: DemoProgress | None = None) -> DemoRun:
    """Simulate the day, stamp it, write the forms, issue a checkpoint, verify everything.

    A missing form font or a day too large is refused before a station or store is written."""
    if not 1 <= command.donations <= MAX_DONATIONS:
        raise InputError(
            f"a demo day holds 1 to {MAX_DONATIONS} donations, not {command.donations}"
        )
    if command.forms:
        form_font()  # FontUnavailable (exit 2) before anything exists
    tell = progress or (lambda label, done, total: None)
    try:
        station, initialised = Station.open(settings), False
    except StationNotInitialised:
        station, initialised = Station.initialise(settings), True
    with station:
        started = time.perf_counter()
        day = DemoDay(station, command.seed)
        region = donor_history.StandInServer().__enter__()
        day.region = region
        stamping = StamperThread(station.stamper()).start()
        done = 0

        def advance() -> None:
            nonlocal done
            done += 1
            tell("donations", done, command.donations)

        try:
            summary = day.run(command.donations, advance)
        finally:
            region.__exit__()
        stamping.stop(flush=True)
        forms_dir = settings.home / "forms"
        forms = _demo_forms(station, day, forms_dir, tell) if command.forms else 0
        checkpoint = station.checkpoint()
        checkpoint_file = default_checkpoint_path(settings, checkpoint.size)
        write_checkpoint_file(checkpoint_file, checkpoint)
        seconds = time.perf_counter() - started
        verify_started = time.perf_counter()
        report = verify_station(station)
        return DemoRun(
            command.seed,
            summary,
            initialised,
            forms,
            forms_dir,
            stamping.stamper.requests,
            checkpoint.size,
            checkpoint_file,
            seconds,
            report,
            time.perf_counter() - verify_started,
        )


def _demo_forms(station: Station, day: DemoDay, out: Path, tell: DemoProgress) -> int:
    """The three signed forms of every sealed donation (donors sign while their 24 h
    certificate, held only by this process, is valid)."""
    producer = producer_for(station)
    written = 0
    for done, (donation_id, donor) in enumerate(day.sealed, start=1):
        written += len(producer.produce(station, donation_id, out, donor, stamp_pending=False))
        tell("signed forms", done, len(day.sealed))
    return written
