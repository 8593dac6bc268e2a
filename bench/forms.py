"""Signed forms: forms per second beside pyHanko signing a blank page at B-LTA, and the forms of
100 donations on 2 cores.

    python -m bench.forms [--donations N] [--single-donations K] [--blank B] [--repeat R]
                          [--workers W] [--serial-baseline] [--part single|parallel|all]

The ledger: a fresh station on SQLite in a temporary directory (`Station.initialise`), a demo day
of `--donations` donations through the full application (`services.demo.DemoDay`: signed events,
donor certificates issued at signing time, co-signatures, deferrals, reactions, amendments), the
stamper running meanwhile and flushed at the end, so every event is in a timestamped batch, as
`ledger demo` leaves it. The TSA is the station's own, over HTTP on 127.0.0.1, in this process.

1. One core (this process and its threads, the TSA server's included, pinned to CPU 0 with
   `os.sched_setaffinity`). Three sides alternate within each of `--repeat` runs:

   * **ours**: `FormProducer.produce` for `--single-donations` sealed donations (each: the
     events read back, the evidence and inclusion paths gathered, the station's three forms
     built, rendered to PDF/A-3b with the CJK font subset and the evidence attached, signed
     with PAdES by every signer, the donor included (their credential is at hand, as in
     `ledger demo`), the last update B-LTA, and written to disk). Rate: forms per second.
   * **pyHanko, blank page, B-LTA**: pyHanko's `PdfSigner` signing a blank one-page fpdf2 PDF
     with a visible signature: an EC P-256 staff credential (the key type of every station
     credential), a signature timestamp, then pyHanko's own B-LTA (`embed_validation_info`,
     `use_pades_lta`: validation, DSS with certificates and CRL, document timestamp), against
     the same TSA through the same client (`signing.pades.TimeStamperAdapter` over
     `HttpTimeStamper`). The issue's anchor. Goal: ours >= 0.8x.
   * **pyHanko, blank page, same signatures**: for every form of the ours slice, a blank page
     signed as many times as that form was (B-T signatures, each its own incremental update,
     the last one B-LTA as above). The same signature work without our page and evidence.

   Besides: the time of each of our B-T signature updates and B-LTA updates (the `PadesSigner`
   calls, timed in place) beside pyHanko's on the blank page, and our phases per form.

2. `--workers` processes (multiprocessing, spawn), each opening the station (`Station.open`) and
   producing the forms of its share of every sealed donation (round robin), against the TSA
   served by this process. The donors' 24-hour credentials live only in the process that ran
   the demo, so workers cannot make donor signatures: their forms show the donor's CAdES
   signature of the ledger event (attached) instead. Wall time from the moment every worker is
   ready (station open, font parsed) to the last form written, and from process start.
   `--serial-baseline` adds one worker doing all of them, for the speed-up.

Performance goals live here, never in timed tests.
"""

from __future__ import annotations

import argparse
import gc
import logging
import multiprocessing
import os
import queue
import secrets
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from time import perf_counter
from typing import Any
from uuid import UUID

from asn1crypto import crl as asn1_crl
from asn1crypto import keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fpdf import FPDF
from pydantic import SecretStr
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from rich.console import Console
from rich.table import Table

from bench.append import machine
from bench.common import median, metric_line
from documents.forms.render import STATIC_TEXT
from documents.forms.templates import FIXED_TEXT
from ledger.signer import CredentialSigner
from ledger.timestamping import StamperThread
from services.demo import DemoDay
from services.forms import FormProducer, producer_for
from services.settings import Settings
from services.station import Station
from signing.pades import PadesSigner, TimeStamperAdapter
from signing.tsa import TsaServer

GOAL = 0.8
#: pyHanko logs "fetching is not allowed" and similar on every signature.
QUIET_LOGGERS = ("pyhanko", "pyhanko_certvalidator")


def quiet() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


# -- the ledger --------------------------------------------------------------------------------


@dataclass
class Ledger:
    settings: Settings
    station: Station
    sealed: list[tuple[UUID, CredentialSigner | None]]


def build_ledger(directory: Path, donations: int, seed: int) -> Ledger:
    """A station on SQLite under *directory* with a demo day of *donations* donations, every
    event stamped, as `ledger demo` leaves it (but no forms yet)."""
    settings = Settings(
        db=f"sqlite:///{directory / 'ledger.sqlite'}",
        home=directory / "home",
        passphrase=SecretStr("bench-only-" + secrets.token_hex(8)),
        station_id="BENCH-01",
        tsa_urls="",
        checkpoint_interval_s=0,
    )
    station = Station.initialise(settings)
    day = DemoDay(station, seed)
    stamping = StamperThread(station.stamper()).start()
    try:
        day.run(donations)
    finally:
        stamping.stop(flush=True)
    return Ledger(settings, station, list(day.sealed))


@contextmanager
def one_core() -> Iterator[int]:
    """Pin every thread of this process (the TSA server's included) to CPU 0; restore on exit.
    Threads started meanwhile inherit the pin of the thread that starts them."""
    previous = os.sched_getaffinity(0)
    tasks = [int(t) for t in os.listdir("/proc/self/task")]
    for task in tasks:
        os.sched_setaffinity(task, {0})
    try:
        yield 0
    finally:
        for task in (int(t) for t in os.listdir("/proc/self/task")):
            with suppress(OSError):  # the thread ended meanwhile
                os.sched_setaffinity(task, previous)


# -- ours, timed in place ----------------------------------------------------------------------


@dataclass
class UpdateTimes:
    """Seconds per PAdES update, as `PadesSigner` made them; signatures per form."""

    bt: list[float] = field(default_factory=list)  # one B-T signature (new field + timestamp)
    lta: list[float] = field(default_factory=list)  # DSS + document timestamp
    slots: list[int] = field(default_factory=list)  # B-T signatures per form

    def clear(self) -> None:
        self.bt.clear()
        self.lta.clear()
        self.slots.clear()


def instrument(pades: PadesSigner, times: UpdateTimes) -> None:
    """Time every `sign` and `add_lta` of *pades* and count the slots of every `sign_all`
    (instance attributes shadowing the methods; `sign_all` calls them through `self`)."""
    sign, add_lta, sign_all = pades.sign, pades.add_lta, pades.sign_all

    def timed_sign(pdf: bytes, slot: Any) -> bytes:
        start = perf_counter()
        out = sign(pdf, slot)
        times.bt.append(perf_counter() - start)
        return out

    def timed_lta(pdf: bytes, **kw: Any) -> bytes:
        start = perf_counter()
        out = add_lta(pdf, **kw)
        times.lta.append(perf_counter() - start)
        return out

    def counted_sign_all(pdf: bytes, slots: Sequence[Any], **kw: Any) -> bytes:
        times.slots.append(len(slots))
        return sign_all(pdf, slots, **kw)

    pades.__dict__.update(sign=timed_sign, add_lta=timed_lta, sign_all=counted_sign_all)


@dataclass
class Ours:
    ledger: Ledger
    donations: list[tuple[UUID, CredentialSigner | None]]
    out: Path
    producer: FormProducer = field(init=False)
    times: UpdateTimes = field(default_factory=UpdateTimes)

    def __post_init__(self) -> None:
        self.producer = producer_for(self.ledger.station)
        instrument(self.producer.pades(self.ledger.station), self.times)

    def run(self) -> tuple[int, float]:
        """The forms of every donation of the slice: (forms, seconds)."""
        station, forms = self.ledger.station, 0
        start = perf_counter()
        for donation_id, donor in self.donations:
            forms += len(
                self.producer.produce(station, donation_id, self.out, donor, stamp_pending=False)
            )
        return forms, perf_counter() - start


# -- pyHanko on a blank page -------------------------------------------------------------------


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


class Blank:
    """pyHanko's stock `PdfSigner` on a blank one-page PDF (fpdf2), visible signatures."""

    def __init__(self, station: Station) -> None:
        page = FPDF()
        page.add_page()
        self.pdf = bytes(page.output())
        credential = station.signer("P001").credential
        registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]
        registry.register_multiple(_asn1(c) for c in credential.chain)
        pkcs8 = credential.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.signer = signers.SimpleSigner(
            signing_cert=_asn1(credential.certificate),
            signing_key=keys.PrivateKeyInfo.load(pkcs8),
            cert_registry=registry,
        )
        self.timestamper = TimeStamperAdapter(station.timestamper())
        crl = station.pki.crl(datetime.now(UTC)).public_bytes(serialization.Encoding.DER)
        # One validation context for the run: its caches help pyHanko, not us.
        self.context = ValidationContext(
            trust_roots=[_asn1(station.pki.root_certificate)],
            crls=[asn1_crl.CertificateList.load(crl)],
            allow_fetching=False,
            revocation_mode="hard-fail",
        )
        self.bt: list[float] = []  # seconds per B-T signature
        self.blta: list[float] = []  # seconds per B-LTA signature (B-T + DSS + doc timestamp)

    def sign(self, pdf: bytes, index: int, *, lta: bool) -> bytes:
        name = f"Sig{index}"
        meta = signers.PdfSignatureMetadata(
            field_name=name,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            embed_validation_info=lta,
            use_pades_lta=lta,
            validation_context=self.context if lta else None,
        )
        top = 800 - 62 * (index % 12)
        pdf_signer = signers.PdfSigner(
            meta,
            signer=self.signer,
            timestamper=self.timestamper,
            new_field_spec=fields.SigFieldSpec(name, box=(40, top - 56, 260, top)),
        )
        out = BytesIO()
        start = perf_counter()
        pdf_signer.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), output=out)
        (self.blta if lta else self.bt).append(perf_counter() - start)
        return out.getvalue()

    def signed(self, signatures: int) -> bytes:
        """The blank page signed *signatures* times, the last signature B-LTA."""
        pdf = self.pdf
        for index in range(1, signatures):
            pdf = self.sign(pdf, index, lta=False)
        return self.sign(pdf, signatures, lta=True)

    def run(self, counts: Sequence[int]) -> tuple[int, float]:
        """One PDF per entry of *counts*, signed that many times: (PDFs, seconds)."""
        start = perf_counter()
        for count in counts:
            self.signed(count)
        return len(counts), perf_counter() - start


# -- 1. one core -------------------------------------------------------------------------------


@dataclass
class SingleCore:
    ours: list[float] = field(default_factory=list)  # forms/s per run
    blank: list[float] = field(default_factory=list)  # PDFs/s per run
    same: list[float] = field(default_factory=list)  # PDFs/s per run, our signature counts
    forms: int = 0
    signatures: int = 0
    ours_bt: list[float] = field(default_factory=list)
    ours_lta: list[float] = field(default_factory=list)
    blank_bt: list[float] = field(default_factory=list)
    blank_blta: list[float] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per form
    sizes: list[int] = field(default_factory=list)
    font_rebuilds: int = 0
    blank_size: int = 0


def measure_single(ledger: Ledger, args: argparse.Namespace, console: Console) -> SingleCore:
    result = SingleCore()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-forms-") as tmp, one_core():
        ours = Ours(ledger, ledger.sealed[: args.single_donations], Path(tmp))
        blank = Blank(ledger.station)
        # Warm-up, not timed: font parse and the working font's growth with the names of the
        # slice, pyHanko's signer objects and dummy token, the validation context's caches.
        ours.run()
        counts = tuple(ours.times.slots)  # the same in every run: same donations, same signers
        blank.run([1, *counts[:2]])
        result.blank_size = len(blank.signed(1))
        rebuilds = ours.producer.font.rebuilds
        timings = ours.producer.timings
        phases0 = (timings.gather, timings.render, timings.sign, timings.forms)
        ours_seconds = 0.0
        for run in range(args.repeat):
            ours.times.clear()
            blank.bt.clear()
            blank.blta.clear()
            sides: list[tuple[str, Callable[[], tuple[int, float]]]] = [
                ("ours", ours.run),
                ("blank", lambda: blank.run([1] * args.blank)),
                ("same", lambda: blank.run(counts)),
            ]
            if run % 2:
                sides.reverse()
            for name, side in sides:
                gc.collect()
                count, seconds = side()
                getattr(result, name).append(count / seconds)
                if name == "ours":
                    ours_seconds += seconds
                    result.forms += count
                    result.signatures += sum(ours.times.slots)
                    result.ours_bt += ours.times.bt
                    result.ours_lta += ours.times.lta
            result.blank_bt += blank.bt
            result.blank_blta += blank.blta
            console.print(
                f"  run {run + 1}: ours {result.ours[-1]:.2f} forms/s, pyHanko blank B-LTA "
                f"{result.blank[-1]:.1f}/s, same signatures {result.same[-1]:.2f}/s",
                style="dim",
            )
        gather, render, sign, forms = (
            now - before
            for now, before in zip(
                (timings.gather, timings.render, timings.sign, timings.forms), phases0, strict=True
            )
        )
        result.phases = {
            "gather (events, evidence, paths)": gather / forms,
            "render (PDF/A-3b, font subset, attachments)": render / forms,
            "sign (B-T signatures + B-LTA update)": sign / forms,
            "other (forms built, document font, file writes)": (
                ours_seconds - gather - render - sign
            )
            / forms,
        }
        result.font_rebuilds = ours.producer.font.rebuilds - rebuilds
        result.sizes = [p.stat().st_size for p in Path(tmp).iterdir()]
    return result


def report_single(result: SingleCore, args: argparse.Namespace, console: Console) -> None:
    per_form = result.signatures / result.forms
    ours, blank, same = median(result.ours), median(result.blank), median(result.same)
    ratios = [o / b for o, b in zip(result.ours, result.blank, strict=True)]
    same_ratios = [o / s for o, s in zip(result.ours, result.same, strict=True)]
    table = Table(title=f"Signed forms on one core (CPU 0), median of {args.repeat} runs")
    for name, justify in (
        ("figure", "left"),
        ("ours", "right"),
        ("anchor (same run)", "right"),
        ("ratio", "right"),
        ("goal", "right"),
        ("met?", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    met = median(ratios) >= GOAL
    table.add_row(
        "signed forms per second (B-LTA)",
        f"{ours:.2f} forms/s",
        f"{blank:.1f} PDFs/s (pyHanko, blank page, 1 signature, B-LTA)",
        f"{median(ratios):.2f}x",
        f">= {GOAL}x",
        "yes" if met else "[bold red]NO[/]",
    )
    table.add_row(
        "the same signatures on a blank page",
        f"{ours:.2f} forms/s",
        f"{same:.2f} PDFs/s (pyHanko, {per_form:.2f} signatures each, last B-LTA)",
        f"{median(same_ratios):.2f}x",
        "-",
        "-",
    )
    ours_bt, blank_bt = median(result.ours_bt) * 1e3, median(result.blank_bt) * 1e3
    table.add_row(
        "one B-T signature update (ms, median)",
        f"{ours_bt:.1f} ms",
        f"{blank_bt:.1f} ms (pyHanko, blank page)",
        f"{blank_bt / ours_bt:.2f}x",
        "-",
        "-",
    )
    ours_lta = median(result.ours_lta) * 1e3
    blank_lta = (median(result.blank_blta) - median(result.blank_bt)) * 1e3
    table.add_row(
        "B-LTA update: DSS + document timestamp (ms)",
        f"{ours_lta:.1f} ms",
        f"{blank_lta:.1f} ms (pyHanko: B-LTA signature {median(result.blank_blta) * 1e3:.1f}"
        f" - B-T {blank_bt:.1f})",
        f"{blank_lta / ours_lta:.2f}x",
        "-",
        "-",
    )
    console.print(table)
    console.print(
        f"ours: {result.forms} forms, {per_form:.2f} PAdES signatures a form (+ 1 DSS and document"
        f" timestamp each); files {min(result.sizes) // 1024}-{max(result.sizes) // 1024} KiB"
        f" (the blank page signed once at B-LTA: {result.blank_size // 1024} KiB); working-font"
        f" rebuilds while timed: {result.font_rebuilds}"
    )
    phases = Table(title="ours, per form (seconds summed by FormProducer over the timed runs)")
    phases.add_column("phase")
    phases.add_column("ms/form", justify="right")
    for name, seconds in result.phases.items():
        phases.add_row(name, f"{seconds * 1e3:.1f}")
    phases.add_row("total", f"{1e3 / ours:.1f}")
    console.print(phases)
    console.print(
        "runs (ours | blank B-LTA | same signatures -> ratios): "
        + ", ".join(
            f"{o:.2f} | {b:.1f} | {s:.2f} -> {o / b:.2f}, {o / s:.2f}"
            for o, b, s in zip(result.ours, result.blank, result.same, strict=True)
        ),
        style="dim",
    )
    print(
        metric_line(
            "forms_signed_per_s_1core",
            ours,
            blank,
            anchor_is="pyHanko signing a blank page (B-LTA), same run, same core",
            goal=GOAL,
            signatures_per_form=round(per_form, 2),
        ),
        flush=True,
    )
    if not met:
        console.print(
            f"[bold red]MISSED[/] signed forms per second: {median(ratios):.2f}x < {GOAL}x. A form "
            f"carries {per_form:.1f} PAdES signatures, each its own incremental update over the "
            "whole file (page, CJK font subset, attached evidence), plus the B-LTA update; the "
            "anchor signs a blank page once. Per signature update see the rows above."
        )


# -- 2. several processes ----------------------------------------------------------------------


def _worker(
    config: dict[str, Any],
    donations: list[str],
    out: str,
    barrier: Any,
    results: Any,
) -> None:
    """Open the station, get ready, wait for the others, produce the forms of *donations*."""
    quiet()
    try:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        settings = Settings(**{**config, "passphrase": SecretStr(config["passphrase"])})
        station = Station.open(settings)
    except BaseException as exc:
        barrier.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})
        raise
    try:
        producer = producer_for(station)
        producer.font.warm(FIXED_TEXT + STATIC_TEXT)  # the font parsed and its labels in
        station.timestamper()
        barrier.wait()
        start = perf_counter()
        forms = 0
        for donation in donations:
            forms += len(
                producer.produce(station, UUID(donation), Path(out), None, stamp_pending=False)
            )
        results.put(
            {
                "forms": forms,
                "signatures": producer.timings.signatures,
                "seconds": perf_counter() - start,
            }
        )
    except BaseException as exc:
        barrier.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        station.close()


@dataclass
class Parallel:
    workers: int
    donations: int
    forms: int
    signatures: int
    wall: float  # from every worker ready to the last form written
    total: float  # from process start
    per_worker: list[float]


def run_workers(ledger: Ledger, tsa_url: str, workers: int, out: Path) -> Parallel:
    context = multiprocessing.get_context("spawn")
    settings = ledger.settings
    config = {
        "db": settings.db,
        "home": str(settings.home),
        "passphrase": settings.passphrase.get_secret_value(),
        "station_id": settings.station_id,
        "tsa_urls": tsa_url,
        "checkpoint_interval_s": 0,
    }
    ids = [str(donation_id) for donation_id, _ in ledger.sealed]
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    started = perf_counter()
    processes = [
        context.Process(target=_worker, args=(config, ids[i::workers], str(out), barrier, results))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        barrier.wait(timeout=300)
    except threading.BrokenBarrierError:
        error = results.get(timeout=10)
        raise RuntimeError(f"a worker failed to start: {error}") from None
    ready = perf_counter()
    answers = []
    for _ in processes:
        try:
            answers.append(results.get(timeout=1800))
        except queue.Empty:
            raise RuntimeError("a worker did not finish in 30 minutes") from None
    done = perf_counter()
    for process in processes:
        process.join()
    if errors := [a["error"] for a in answers if "error" in a]:
        raise RuntimeError(f"a worker failed: {errors[0]}")
    return Parallel(
        workers=workers,
        donations=len(ids),
        forms=sum(a["forms"] for a in answers),
        signatures=sum(a["signatures"] for a in answers),
        wall=done - ready,
        total=done - started,
        per_worker=[a["seconds"] for a in answers],
    )


def measure_parallel(ledger: Ledger, args: argparse.Namespace, console: Console) -> list[Parallel]:
    server = TsaServer(ledger.station.local_tsa())  # the station's TSA, served by this process
    server.start()
    runs = []
    try:
        plans = [args.workers, *([1] if args.serial_baseline else [])]
        for workers in plans:
            with tempfile.TemporaryDirectory(prefix="ledger-bench-forms-") as tmp:
                runs.append(run_workers(ledger, server.url, workers, Path(tmp)))
            r = runs[-1]
            console.print(
                f"  {workers} worker(s): {r.forms} forms of {r.donations} donations in "
                f"{r.wall:.1f} s ({r.total:.1f} s from process start)",
                style="dim",
            )
    finally:
        server.stop()
    return runs


def report_parallel(runs: Sequence[Parallel], console: Console) -> None:
    table = Table(title="Forms of every donation, worker processes (spawn), SQLite, local TSA")
    for name in (
        "workers",
        "donations",
        "forms",
        "signatures/form",
        "wall, workers ready",
        "forms/s",
        "wall from process start",
        "per worker",
    ):
        table.add_column(name, justify="left" if name == "workers" else "right")
    for r in runs:
        table.add_row(
            str(r.workers),
            str(r.donations),
            str(r.forms),
            f"{r.signatures / r.forms:.2f}",
            f"{r.wall:.1f} s",
            f"{r.forms / r.wall:.2f}",
            f"{r.total:.1f} s",
            ", ".join(f"{s:.1f} s" for s in r.per_worker),
        )
    console.print(table)
    if len(runs) > 1:
        console.print(f"speed-up {runs[0].workers} workers / 1: {runs[1].wall / runs[0].wall:.2f}x")
        print(
            metric_line(
                f"forms_speedup_{runs[0].workers}w_over_1w",
                runs[0].forms / runs[0].wall,
                runs[1].forms / runs[1].wall,
                anchor_is="the same forms with 1 worker, same run",
            ),
            flush=True,
        )
    console.print(
        "Workers cannot sign as donors: the donors' 24-hour credentials exist only in the process "
        "that ran the demo (never stored). Their forms show the donor's CAdES signature of the "
        "ledger event, attached as evidence, in the donor's box instead of a PDF signature."
    )


# -- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.forms", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--donations", type=int, default=100, help="donations in the ledger")
    parser.add_argument(
        "--single-donations", type=int, default=6, help="donations per one-core slice of ours"
    )
    parser.add_argument(
        "--blank", type=int, default=20, help="blank pages signed per slice of the anchor"
    )
    parser.add_argument("--repeat", type=int, default=3, help="one-core runs (median)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the second part")
    parser.add_argument(
        "--serial-baseline", action="store_true", help="also produce every form with 1 worker"
    )
    parser.add_argument("--part", choices=("single", "parallel", "all"), default="all")
    parser.add_argument("--seed", type=int, default=1, help="demo day seed")
    args = parser.parse_args(argv)
    if min(args.donations, args.single_donations, args.blank, args.repeat, args.workers) < 1:
        parser.error("sizes must be positive")
    if args.single_donations > args.donations:
        parser.error("--single-donations cannot exceed --donations")
    quiet()
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(f"machine: {machine()}")
    started = perf_counter()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-forms-") as tmp:
        ledger = build_ledger(Path(tmp), args.donations, args.seed)
        try:
            console.print(
                f"ledger: {args.donations} donations ({len(ledger.sealed)} sealed), "
                f"{ledger.station.store.count_chain():,} events, built in "
                f"{perf_counter() - started:.0f} s",
                style="dim",
            )
            if args.part in ("single", "all"):
                report_single(measure_single(ledger, args, console), args, console)
            if args.part in ("parallel", "all"):
                report_parallel(measure_parallel(ledger, args, console), console)
        finally:
            ledger.station.close()
    console.print(f"total {perf_counter() - started:.0f} s", style="dim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
