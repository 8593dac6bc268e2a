"""Regional donor history (献血史查询, 献血屏蔽查询) behind one interface.

`DonorHistorySource` answers, for an ID number, the donor's donations and deferrals at the
other blood services of the province. `HttpDonorHistorySource` asks a real service over HTTP
(``LEDGER_DONOR_HISTORY_URL``: ``POST {url}`` with ``{"id_type", "id_number"}``, answer
``{"source", "donations": [{"date", "product", "site"}], "deferrals": [{"from", "until",
"reason", "site"}]}``); `StandInServer` is a small local HTTP service with that protocol, for
the demo and the tests (real HTTP, as the local TSA is). `check_donor_history` records the
answer as the signed `DonorHistoryChecked` of a donation, which the eligibility rules read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from uuid import UUID

import httpx

from ledger.identity import mask_id
from services.staff import staff_signer
from services.station import Station
from signing.errors import InputError


@dataclass(frozen=True)
class RegionalHistory:
    source: str
    donations: list[dict[str, Any]] = field(default_factory=list)
    deferrals: list[dict[str, Any]] = field(default_factory=list)


class DonorHistorySource(Protocol):
    def query(self, id_type: str, id_number: str) -> RegionalHistory: ...


class RegionalServiceUnavailable(InputError):
    """The regional service did not answer usefully."""


class HttpDonorHistorySource:
    """The provincial blood cloud over HTTP (the ID number in the body, never in the URL)."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def query(self, id_type: str, id_number: str) -> RegionalHistory:
        try:
            answer = httpx.post(
                self.url, json={"id_type": id_type, "id_number": id_number},
                timeout=self.timeout_s,
            )  # fmt: skip
            answer.raise_for_status()
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RegionalServiceUnavailable(
                f"regional donor history at {self.url}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(body, Mapping):
            raise RegionalServiceUnavailable(f"regional donor history at {self.url}: not an object")
        return RegionalHistory(
            str(body.get("source") or self.url),
            list(body.get("donations") or []),
            list(body.get("deferrals") or []),
        )


@dataclass(frozen=True)
class CheckDonorHistory:
    donation_id: UUID
    id_type: str
    id_number: str
    #: Who signs the record: the registrar's staff id, or "" for the station's system key.
    staff_id: str = ""


@dataclass(frozen=True)
class Answer:
    history: RegionalHistory
    queried_at: str


@dataclass(frozen=True)
class HistoryChecked:
    donation_id: str
    source: str
    queried_at: str
    donations: int
    deferrals: int


def ask(source: DonorHistorySource, id_type: str, id_number: str) -> Answer:
    """The regional answer and when it was asked (nothing recorded yet)."""
    queried_at = datetime.now(UTC).isoformat(timespec="seconds")
    return Answer(source.query(id_type, id_number.strip().upper()), queried_at)


def record_answer(
    station: Station, answer: Answer, donation_id: UUID, staff_id: str = ""
) -> HistoryChecked:
    """Record the answer as the donation's signed `DonorHistoryChecked`."""
    signer = staff_signer(station, staff_id) if staff_id else station.system
    station.app.record_donor_history(
        donation_id,
        signer,
        source=answer.history.source,
        queried_at=answer.queried_at,
        donations=answer.history.donations,
        deferrals=answer.history.deferrals,
    )
    return HistoryChecked(
        str(donation_id), answer.history.source, answer.queried_at,
        len(answer.history.donations), len(answer.history.deferrals),
    )  # fmt: skip


def check_donor_history(
    station: Station, source: DonorHistorySource, command: CheckDonorHistory
) -> HistoryChecked:
    """Ask the regional service and record its answer (signed) for the donation."""
    answer = ask(source, command.id_type, command.id_number)
    return record_answer(station, answer, command.donation_id, command.staff_id)


def configured_source(url: str | None, timeout_s: float = 5.0) -> DonorHistorySource | None:
    """The HTTP source of ``LEDGER_DONOR_HISTORY_URL``, or None when none is configured."""
    return HttpDonorHistorySource(url, timeout_s) if url else None


# -- the local stand-in ----------------------------------------------------------------------


class StandInServer:
    """A local regional service: answers from `records` (ID number -> history) over HTTP on
    127.0.0.1, in a thread. Unknown donors have an empty history."""

    def __init__(self, name: str = "stand-in provincial blood cloud") -> None:
        self.name = name
        self.records: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.queries = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    asked = json.loads(self.rfile.read(length))
                    number = str(asked["id_number"]).strip().upper()
                except (ValueError, KeyError, TypeError):
                    self.send_error(400, "expected {id_type, id_number}")
                    return
                owner.queries += 1
                record = owner.records.get(number, {})
                body = json.dumps(
                    {"source": owner.name, "id_number_masked": mask_id(number),
                     "donations": record.get("donations", []),
                     "deferrals": record.get("deferrals", [])}
                ).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the requests carry ID numbers

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/donor-history"

    def __enter__(self) -> StandInServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
