"""Archiving a period in the background, for `ledger serve`: one job at a time per server.

`ArchiveJobs.start` checks the command against the station (period, archivist) and starts a
worker thread that opens its own `Station` on the same settings and runs
`services.archive.archive_period` with a progress callback; the job's state (phase, done,
total, then the result or the one-line error) is what the page polls. The request never waits
for the archiving and the event loop never runs it; a second start while one runs is refused
(`ArchiveJobRunning`, HTTP 409). Jobs are kept in memory for the server's lifetime; the
packages themselves are in the ledger (`services.archive_history`).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services import archive
from services.archive import ArchivePeriod, ArchiveResult
from services.settings import Settings
from services.station import Station
from signing.errors import LedgerError

__all__ = ["ArchiveJob", "ArchiveJobNotFound", "ArchiveJobRunning", "ArchiveJobs"]

log = logging.getLogger(__name__)


class ArchiveJobRunning(LedgerError):
    """An archive job is running already: one at a time."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"archive job {job_id} is still running: wait for it to finish")
        self.job_id = job_id


class ArchiveJobNotFound(LedgerError):
    """No archive job of that id in this server."""


@dataclass
class ArchiveJob:
    job_id: str
    command: ArchivePeriod
    started_by: str
    started_at: datetime
    state: str = "running"  # running, done, failed
    phase: str = "selecting"
    done: int = 0
    total: int = 0
    finished_at: datetime | None = None
    result: ArchiveResult | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"

    def to_json(self) -> dict[str, Any]:
        result = self.result
        return {
            "job_id": self.job_id,
            "state": self.state,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "from_date": self.command.from_date.isoformat(),
            "to_date": self.command.to_date.isoformat(),
            "department": self.command.department,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error,
            "result": None
            if result is None
            else {
                "package_id": result.package_id if result.package is not None else None,
                "archived": list(result.archived),
                "supplementary": list(result.supplements),
                "refused": [
                    {"donation_no": r.donation_no, "reasons": list(r.reasons)}
                    for r in result.refused
                ],
                "already_archived": result.already_archived,
                "forms_reused": result.forms_reused,
                "seconds": round(result.seconds, 3),
            },
        }


class ArchiveJobs:
    """The server's archive jobs; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._jobs: dict[str, ArchiveJob] = {}
        self._threads: dict[str, threading.Thread] = {}

    def start(self, station: Station, command: ArchivePeriod, started_by: str) -> ArchiveJob:
        """Check the command (bad input raises before anything starts), then archive the
        period in a worker thread. `ArchiveJobRunning` when a job is still running."""
        archive.check_archive_command(station, command)
        with self._lock:
            running = next((j for j in self._jobs.values() if j.running), None)
            if running is not None:
                raise ArchiveJobRunning(running.job_id)
            job = ArchiveJob(secrets.token_hex(8), command, started_by, datetime.now(UTC))
            self._jobs[job.job_id] = job
            thread = threading.Thread(
                target=self._run, args=(job,), name=f"archive-{job.job_id}", daemon=True
            )
            self._threads[job.job_id] = thread
        thread.start()
        return self.get(job.job_id)

    def get(self, job_id: str) -> ArchiveJob:
        """A copy of the job's state now."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise ArchiveJobNotFound(f"no archive job {job_id!r} in this server")
            return dataclasses.replace(job)

    def running(self) -> ArchiveJob | None:
        with self._lock:
            job = next((j for j in self._jobs.values() if j.running), None)
            return dataclasses.replace(job) if job is not None else None

    def recent(self) -> list[ArchiveJob]:
        with self._lock:
            jobs = [dataclasses.replace(j) for j in self._jobs.values()]
        return sorted(jobs, key=lambda j: j.started_at, reverse=True)

    def wait(self, job_id: str, timeout: float | None = None) -> ArchiveJob:
        """Wait for the job's thread to end (tests, shutdown); the job as it then stands."""
        with self._lock:
            thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.get(job_id)

    def wait_all(self, timeout: float | None = None) -> None:
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)

    def _progress(self, job: ArchiveJob, phase: str, done: int, total: int) -> None:
        with self._lock:
            job.phase, job.done, job.total = phase, done, total

    def _run(self, job: ArchiveJob) -> None:
        try:
            with Station.open(self.settings) as station:
                result = archive.archive_period(
                    station,
                    job.command,
                    lambda phase, done, total: self._progress(job, phase, done, total),
                )
        except LedgerError as exc:
            self._finish(job, None, " ".join(str(exc).split()))
        except Exception as exc:  # the job must end, whatever happened; the log has the trace
            log.exception("archive job %s failed", job.job_id)
            self._finish(job, None, f"internal error: {type(exc).__name__}")
        else:
            self._finish(job, result, "")

    def _finish(self, job: ArchiveJob, result: ArchiveResult | None, error: str) -> None:
        with self._lock:
            job.result = result
            job.error = error
            job.state = "failed" if error else "done"
            job.phase = "done" if not error else job.phase
            job.finished_at = datetime.now(UTC)
