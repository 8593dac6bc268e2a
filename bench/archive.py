"""Archiving: one transfer package of a demo day, and verify-package on it, beside anchors
measured in the same run.

    python -m bench.archive [--donations N] [--workers W] [--seed S]

The ledger: a fresh station on SQLite in a temporary directory with a demo day of `--donations`
donations (`bench.forms.build_ledger`: every event signed and stamped, as `ledger demo` leaves
it), no forms written yet.

* **ours, archive**: `services.archive.archive_period` over the day with `--workers` processes:
  selection, the three signed forms of every complete donation rendered and signed
  (`produce_forms`) and then checked (PDF verifier, events against the ledger, active content),
  evidence, DA/T 48 encapsulation packages signed by the archivist, checkpoint, inclusion paths,
  catalogue, four-properties report, the bag (bagit), the signed tag manifest, validation,
  rename, and the DonationArchived events.
* **anchor, forms only**: `produce_forms` for the same donations, in this process (one core):
  what the issue's "rendering and signing" costs without the archive around it.
* **anchor, bagit**: the Library of Congress `bagit` library bagging a plain copy of the same
  payload (`make_bag`, SHA-256) and validating it: the packaging floor.
* **ours, verify-package** (`--workers` processes for the forms) beside the anchor
  `bagit.Bag.validate` of the package (fixity only).

The issue's goal is a month (3,000 donations, 9,000 forms) in at most 5 minutes on 2 cores; the
bench prints the projection from the measured rate per donation (linear: every donation costs
the same). Performance goals live here, never in timed tests.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import bagit

from bench.append import machine
from bench.common import metric_line
from bench.forms import build_ledger, quiet
from documents.package_verify import verify_package
from projections.eventtime import station_date
from services.archive import ArchivePeriod, archive_period
from services.forms import produce_forms

MONTH = 3000
GOAL_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--donations", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    quiet()
    logging.getLogger("bagit").setLevel(logging.WARNING)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ledger = build_ledger(directory, args.donations, args.seed)
        station = ledger.station
        try:
            today = station_date(datetime.now(UTC))
            start = perf_counter()
            result = archive_period(
                station,
                ArchivePeriod(today, today, out=directory / "inbox", workers=args.workers),
            )
            archive_s = perf_counter() - start
            assert result.package is not None, "nothing archived"
            archived = result.count
            numbers = set(result.archived)

            ids = [d for d, _ in ledger.sealed]
            forms_dir = directory / "forms-anchor"
            start = perf_counter()
            forms = 0
            for donation_id in ids:
                number = station.app.donation(donation_id).donation_no
                if number in numbers:
                    forms += len(produce_forms(station, donation_id, forms_dir, None))
            forms_s = perf_counter() - start

            payload = directory / "bagit-anchor"
            shutil.copytree(result.package / "data", payload)
            start = perf_counter()
            bag = bagit.make_bag(str(payload), checksums=["sha256"])
            bag.validate()
            bagit_s = perf_counter() - start

            start = perf_counter()
            report = verify_package(result.package, station.trust_roots(), workers=args.workers)
            verify_s = perf_counter() - start
            start = perf_counter()
            bagit.Bag(str(result.package)).validate()
            validate_s = perf_counter() - start
        finally:
            station.close()

    per_donation = archive_s / archived
    print(
        f"archive: {archived} donations ({len(result.refused)} refused, "
        f"{result.count * 3} forms) with {args.workers} workers in {archive_s:.1f} s = "
        f"{per_donation:.2f} s per donation"
    )
    print(
        f"anchor, forms only (produce_forms, 1 core): {forms} forms in {forms_s:.1f} s = "
        f"{forms_s / archived:.2f} s per donation; ratio archive/forms {archive_s / forms_s:.2f}"
    )
    print(
        f"anchor, bagit make_bag + validate of the same payload: {bagit_s:.2f} s; "
        f"ratio archive/bagit {archive_s / bagit_s:.1f}"
    )
    print(
        f"verify-package: {report.verdict} in {verify_s:.1f} s ({verify_s / archived:.2f} s per "
        f"donation); anchor bagit validate {validate_s:.2f} s; ratio {verify_s / validate_s:.1f}"
    )
    month = per_donation * MONTH
    print(
        f"projection for a month ({MONTH} donations) at this rate: archive {month / 60:.1f} min "
        f"(goal {GOAL_S / 60:.0f} min: {'met' if month <= GOAL_S else 'NOT met'}), "
        f"verify-package {verify_s / archived * MONTH / 60:.1f} min"
    )
    print(
        metric_line(
            "archive_donations_per_s",
            archived / archive_s,
            archived / forms_s,
            anchor_is="producing the same donations' forms only (1 core), same run",
            workers=args.workers,
            donations=archived,
        )
    )
    print(
        metric_line(
            "verify_package_per_s",
            1 / verify_s,
            1 / validate_s,
            anchor_is="bagit validate of the same package, same run (packages per second)",
            verdict=str(report.verdict),
        )
    )


if __name__ == "__main__":
    main()
