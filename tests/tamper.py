"""Apply a tamper vector to a ledger, SQLite or PostgreSQL, as an attacker with database access
would: plain SQL on the stored rows.

Test-only. The attacker edits rows directly; where a vector needs a signature, the attacker
uses keys (another staff member's, or an expired donor certificate) made by the test PKI.
A vector's ``mutation`` is one op or ``{"ops": [...]}``, applied in order (see ``_apply_op``).
"""

from __future__ import annotations

import base64
import dataclasses
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from ledger.canonical import event_canonical_bytes, sha256_hex
from ledger.events import LedgerAggregate
from ledger.signer import CredentialSigner
from ledger.stores import BATCH_TABLE, CHAIN_TABLE, CHECKPOINT_TABLE, EVENT_TOKEN_TABLE
from services.station import Station

EVIDENCE_TABLES = {
    "batches": BATCH_TABLE,
    "checkpoints": CHECKPOINT_TABLE,
    "event_tokens": EVENT_TOKEN_TABLE,
}


class _Db:
    """The attacker's SQL connection: ``?`` placeholders, events by position, either store."""

    def __init__(self, station: Station) -> None:
        url = station.settings.db
        recorder: Any = station.app.recorder
        self.events = str(recorder.events_table_name)
        self.postgres = not url.startswith("sqlite:///")
        if self.postgres:
            parsed = urlparse(url)
            schema = parse_qs(parsed.query).get("schema", ["public"])[0]
            self.pg = psycopg.connect(
                parsed._replace(query="").geturl(), autocommit=True, row_factory=dict_row
            )
            self.pg.execute(SQL("SET search_path TO {}").format(Identifier(schema)))
            self.id = "notification_id"
        else:
            self.lite = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
            self.lite.row_factory = sqlite3.Row
            self.id = "rowid"

    def close(self) -> None:
        (self.pg if self.postgres else self.lite).close()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        sql = sql.replace("{events}", self.events).replace("{id}", self.id)
        if self.postgres:
            return self.pg.execute(sql.replace("?", "%s"), params).fetchall()
        return self.lite.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        sql = sql.replace("{events}", self.events).replace("{id}", self.id)
        if self.postgres:
            self.pg.execute(sql.replace("?", "%s"), params)
        else:
            self.lite.execute(sql, params)

    def insert_event(
        self, originator_id: UUID, version: int, topic: str, state: bytes, position: int = 0
    ) -> int:
        oid: Any = originator_id if self.postgres else originator_id.hex
        columns = "originator_id, originator_version, topic, state"
        values: list[Any] = [oid, version, topic, state]
        if position:
            columns, values = f"{self.id}, {columns}", [position, *values]
        marks = ",".join("?" * len(values))
        if self.postgres:
            row = self.rows(
                f"INSERT INTO {{events}} ({columns}) VALUES ({marks}) RETURNING {{id}}", values
            )
            return int(row[0][self.id])
        cursor = self.lite.execute(
            f"INSERT INTO {self.events} ({columns}) VALUES ({marks})",
            values,
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def oid(self, originator_id: UUID) -> Any:
        return originator_id if self.postgres else originator_id.hex


_NEEDS_EVENT = {
    "edit_field",
    "edit_field_rehash",
    "append_forged_copy",
    "insert_unchained",
    "replace_signature",
    "resign_as_staff",
    "resign_with_expired_donor_certificate",
}


class Tamperer:
    def __init__(self, station: Station, db_path: str = "") -> None:
        self.station = station
        self.db = _Db(station)

    def close(self) -> None:
        self.db.close()

    # -- reading ----------------------------------------------------------------------------

    def positions(self) -> list[int]:
        return [int(r[self.db.id]) for r in self.db.rows("SELECT {id} FROM {events} ORDER BY {id}")]

    def _row(self, position: int) -> Any:
        return self.db.rows(
            "SELECT originator_id, originator_version, topic, state FROM {events} WHERE {id} = ?",
            (position,),
        )[0]

    def event_at(self, position: int) -> LedgerAggregate.Event:
        row = self._row(position)
        stored = StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        event = self.station.app.mapper.to_domain_event(stored)
        assert isinstance(event, LedgerAggregate.Event)
        return event

    def find(self, event_type: str, occurrence: int = 1, actor_prefix: str = "") -> int:
        seen = 0
        for position in self.positions():
            event = self.event_at(position)
            if type(event).__name__ == event_type and event.actor.startswith(actor_prefix):
                seen += 1
                if seen == occurrence:
                    return position
        raise LookupError(f"no occurrence {occurrence} of {event_type}")

    def next_position(self, position: int) -> int:
        return min(p for p in self.positions() if p > position)

    # -- writing ----------------------------------------------------------------------------

    def write_event(self, position: int, event: Any) -> None:
        stored = self.station.app.mapper.to_stored_event(event)
        self.db.run("UPDATE {events} SET state = ? WHERE {id} = ?", (stored.state, position))

    def replace(self, event: LedgerAggregate.Event, **changes: Any) -> LedgerAggregate.Event:
        # Frozen dataclass: build a copy with the changed fields, as an attacker re-encoding would.
        return dataclasses.replace(event, **changes)

    def resign(
        self, event: LedgerAggregate.Event, signer: CredentialSigner
    ) -> LedgerAggregate.Event:
        body = event_canonical_bytes(event)
        return self.replace(event, signature=signer.sign(body, event.timestamp))

    def apply(self, vector: dict[str, Any]) -> dict[str, int]:
        """Apply the vector's mutation; returns named positions (target, next, inserted,
        first, batch)."""
        target_spec = vector["target"]
        target = self.find(
            target_spec["event_type"],
            target_spec.get("occurrence", 1),
            target_spec.get("actor_prefix", ""),
        )
        positions = self.positions()
        named = {"target": target, "first": positions[0]}
        if target != positions[-1]:
            named["next"] = self.next_position(target)
        batch = self.db.rows(
            f"SELECT first_position FROM {BATCH_TABLE} WHERE first_position <= ? "
            "AND last_position >= ?",
            (target, target),
        )
        if batch:
            named["batch"] = int(batch[0]["first_position"])
        mutation = vector["mutation"]
        for op in mutation.get("ops", [mutation]):
            self._apply_op(op, target, named)
        return named

    def _apply_op(self, mutation: dict[str, Any], target: int, named: dict[str, int]) -> None:
        op = mutation["op"]
        needs_event = op in _NEEDS_EVENT
        event = self.event_at(target) if needs_event else None
        if op == "edit_field":
            assert event is not None
            self.write_event(target, self.replace(event, **{mutation["field"]: mutation["value"]}))
        elif op == "edit_field_rehash":
            assert event is not None
            edited = self.replace(event, **{mutation["field"]: mutation["value"]})
            digest = sha256_hex(event_canonical_bytes(edited))
            self.write_event(target, self.replace(edited, event_hash=digest))
            self.db.run(
                f"UPDATE {CHAIN_TABLE} SET event_hash = ? WHERE position = ?", (digest, target)
            )
            if "next" in named:
                self.db.run(
                    f"UPDATE {CHAIN_TABLE} SET prev_hash = ? WHERE position = ?",
                    (digest, named["next"]),
                )
        elif op == "delete_event":
            self.db.run("DELETE FROM {events} WHERE {id} = ?", (target,))
            if not mutation.get("keep_chain"):
                self.db.run(f"DELETE FROM {CHAIN_TABLE} WHERE position = ?", (target,))
        elif op == "delete_tail":
            # Roll back to just before the target: its rows and every later one go.
            self.db.run("DELETE FROM {events} WHERE {id} >= ?", (target,))
            self.db.run(f"DELETE FROM {CHAIN_TABLE} WHERE position >= ?", (target,))
        elif op == "relink_over":
            # Re-link the global chain over a deleted position: the next row now links to the
            # row before the gap, as a careful attacker would.
            before = self.db.rows(
                f"SELECT event_hash FROM {CHAIN_TABLE} WHERE position < ? "
                "ORDER BY position DESC LIMIT 1",
                (target,),
            )
            if "next" in named:
                self.db.run(
                    f"UPDATE {CHAIN_TABLE} SET prev_hash = ? WHERE position = ?",
                    (before[0]["event_hash"], named["next"]),
                )
        elif op == "delete_evidence":
            for name in mutation["tables"]:
                self.db.run(f"DELETE FROM {EVIDENCE_TABLES[name]}")
        elif op == "delete_event_token":
            self.db.run(f"DELETE FROM {EVENT_TOKEN_TABLE} WHERE position = ?", (target,))
        elif op == "edit_batch_gen_time":
            self.db.run(
                f"UPDATE {BATCH_TABLE} SET gen_time = ? WHERE first_position = ?",
                (mutation["value"], named["batch"]),
            )
        elif op == "change_topic":
            other = self._row(self.find(mutation["to_event_type"]))
            self.db.run("UPDATE {events} SET topic = ? WHERE {id} = ?", (other["topic"], target))
        elif op == "swap_state_with_next":
            a, b = self._row(target), self._row(named["next"])
            self.db.run("UPDATE {events} SET state = ? WHERE {id} = ?", (b["state"], target))
            self.db.run("UPDATE {events} SET state = ? WHERE {id} = ?", (a["state"], named["next"]))
        elif op == "corrupt_state":
            self.db.run(
                "UPDATE {events} SET state = ? WHERE {id} = ?",
                (bytes.fromhex(mutation["state_hex"]), target),
            )
        elif op == "append_forged_copy":
            assert event is not None
            named["inserted"] = self._append_forged_copy(event, mutation)
        elif op == "insert_unchained":
            assert event is not None
            named["inserted"] = self._insert_raw(event, event.originator_version + 100)
        elif op == "swap_with_next":
            self._swap(target, named["next"], relink=bool(mutation.get("relink")))
        elif op == "replace_signature":
            assert event is not None
            donor = self.event_at(self.find(mutation["from_event_type"]))
            self.write_event(target, self.replace(event, signature=donor.signature))
        elif op == "resign_as_staff":
            assert event is not None
            other = self.station.signer(mutation["staff_id"])
            self.write_event(target, self.resign(event, other))
        elif op == "resign_with_expired_donor_certificate":
            assert event is not None
            self.write_event(target, self.resign(event, self._expired_donor(event, mutation)))
        elif op == "edit_chain_prev_hash":
            self.db.run(
                f"UPDATE {CHAIN_TABLE} SET prev_hash = ? WHERE position = ?",
                (mutation["value"], target),
            )
        else:
            raise ValueError(f"unknown tamper op {op}")

    def _expired_donor(
        self, event: LedgerAggregate.Event, mutation: dict[str, Any]
    ) -> CredentialSigner:
        donor_ref = event.actor.split(":", 1)[1]
        issued = event.timestamp - timedelta(hours=float(mutation["issued_hours_before"]))
        credential = self.station.pki.issue_donor(donor_ref, "expired", issued)
        return CredentialSigner(credential, "donor")

    def _insert_raw(self, event: Any, version: int) -> int:
        forged = self.replace(event, originator_version=version)
        stored = self.station.app.mapper.to_stored_event(forged)
        return self.db.insert_event(forged.originator_id, version, stored.topic, stored.state)

    def _append_forged_copy(self, event: LedgerAggregate.Event, mutation: dict[str, Any]) -> int:
        """A copy of the event appended as its aggregate's next event, hashes and chain made
        consistent by the attacker; the signature is the original one (the attacker has no key)."""
        oid = self.db.oid(event.originator_id)
        last_version = int(
            self.db.rows(
                "SELECT MAX(originator_version) AS v FROM {events} WHERE originator_id = ?", (oid,)
            )[0]["v"]
        )
        last_hash = self.db.rows(
            f"SELECT event_hash FROM {CHAIN_TABLE} WHERE originator_id = ? "
            "AND originator_version = ?",
            (oid, last_version),
        )[0]["event_hash"]
        forged = self.replace(
            event,
            originator_version=last_version + 1,
            prev_hash=last_hash,
            **mutation.get("changes", {}),
        )
        digest = sha256_hex(event_canonical_bytes(forged))
        forged = self.replace(forged, event_hash=digest)
        position = self._insert_raw(forged, last_version + 1)
        head = self.db.rows(f"SELECT event_hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")[
            0
        ]["event_hash"]
        self.db.run(
            f"INSERT INTO {CHAIN_TABLE} VALUES (?,?,?,?,?)",
            (position, oid, last_version + 1, digest, head),
        )
        return position

    def _swap(self, a: int, b: int, *, relink: bool) -> None:
        rows = {p: self._row(p) for p in (a, b)}
        self.db.run("BEGIN")
        self.db.run("DELETE FROM {events} WHERE {id} IN (?, ?)", (a, b))
        for position, source in ((a, b), (b, a)):
            row = rows[source]
            self.db.insert_event(
                UUID(str(row["originator_id"])),
                int(row["originator_version"]),
                row["topic"],
                bytes(row["state"]),
                position,
            )
        if relink:
            links = {
                p: self.db.rows(f"SELECT * FROM {CHAIN_TABLE} WHERE position = ?", (p,))[0]
                for p in (a, b)
            }
            before = links[a]["prev_hash"]
            self.db.run(f"DELETE FROM {CHAIN_TABLE} WHERE position IN (?, ?)", (a, b))
            first, second = links[b], links[a]
            for position, link, prev in ((a, first, before), (b, second, first["event_hash"])):
                self.db.run(
                    f"INSERT INTO {CHAIN_TABLE} VALUES (?,?,?,?,?)",
                    (
                        position,
                        link["originator_id"],
                        link["originator_version"],
                        link["event_hash"],
                        prev,
                    ),
                )
            after = self.db.rows(
                f"SELECT position FROM {CHAIN_TABLE} WHERE position > ? ORDER BY position LIMIT 1",
                (b,),
            )
            if after:
                self.db.run(
                    f"UPDATE {CHAIN_TABLE} SET prev_hash = ? WHERE position = ?",
                    (second["event_hash"], after[0]["position"]),
                )
        self.db.run("COMMIT")


def encode_signature(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
