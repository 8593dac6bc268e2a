"""Apply a tamper vector to a SQLite ledger as an attacker with database access would.

Test-only. The attacker edits rows directly; where a vector needs a signature, the attacker
uses keys
(another staff member's, or an expired donor certificate) made by the test PKI.
"""

from __future__ import annotations

import base64
import dataclasses
import sqlite3
from datetime import timedelta
from typing import Any

from eventsourcing.persistence import StoredEvent

from ledger.canonical import event_canonical_bytes, sha256_hex
from ledger.events import LedgerAggregate
from ledger.signer import CredentialSigner
from ledger.stores import CHAIN_TABLE
from services.station import Station


class Tamperer:
    def __init__(self, station: Station, db_path: str) -> None:
        self.station = station
        self.db = sqlite3.connect(db_path, isolation_level=None)
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    # -- reading ----------------------------------------------------------------------------

    def positions(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT rowid FROM stored_events ORDER BY rowid")]

    def event_at(self, position: int) -> LedgerAggregate.Event:
        row = self.db.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "WHERE rowid = ?",
            (position,),
        ).fetchone()
        stored = StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"],
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
        self.db.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = ?", (stored.state, position)
        )

    def replace(self, event: LedgerAggregate.Event, **changes: Any) -> LedgerAggregate.Event:
        # Frozen dataclass: build a copy with the changed fields, as an attacker re-encoding would.
        return dataclasses.replace(event, **changes)

    def resign(
        self, event: LedgerAggregate.Event, signer: CredentialSigner
    ) -> LedgerAggregate.Event:
        body = event_canonical_bytes(event)
        return self.replace(event, signature=signer.sign(body, event.timestamp))

    def apply(self, vector: dict[str, Any]) -> dict[str, int]:
        """Apply the vector's mutation; returns named positions (target, next, inserted)."""
        target_spec = vector["target"]
        target = self.find(
            target_spec["event_type"],
            target_spec.get("occurrence", 1),
            target_spec.get("actor_prefix", ""),
        )
        named = {"target": target}
        positions = self.positions()
        if target != positions[-1]:
            named["next"] = self.next_position(target)
        mutation = vector["mutation"]
        op = mutation["op"]
        event = self.event_at(target)
        if op == "edit_field":
            self.write_event(target, self.replace(event, **{mutation["field"]: mutation["value"]}))
        elif op == "edit_field_rehash":
            edited = self.replace(event, **{mutation["field"]: mutation["value"]})
            digest = sha256_hex(event_canonical_bytes(edited))
            self.write_event(target, self.replace(edited, event_hash=digest))
            self.db.execute(
                f"UPDATE {CHAIN_TABLE} SET event_hash = ? WHERE position = ?", (digest, target)
            )
            if "next" in named:
                self.db.execute(
                    f"UPDATE {CHAIN_TABLE} SET prev_hash = ? WHERE position = ?",
                    (digest, named["next"]),
                )
        elif op == "delete_event":
            self.db.execute("DELETE FROM stored_events WHERE rowid = ?", (target,))
            self.db.execute(f"DELETE FROM {CHAIN_TABLE} WHERE position = ?", (target,))
        elif op == "append_forged_copy":
            named["inserted"] = self._append_forged_copy(event, mutation)
        elif op == "insert_unchained":
            named["inserted"] = self._insert_raw(event, event.originator_version + 100)
        elif op == "swap_with_next":
            self._swap(target, named["next"], relink=bool(mutation.get("relink")))
        elif op == "replace_signature":
            donor = self.event_at(self.find(mutation["from_event_type"]))
            self.write_event(target, self.replace(event, signature=donor.signature))
        elif op == "resign_as_staff":
            other = self.station.signer(mutation["staff_id"])
            self.write_event(target, self.resign(event, other))
        elif op == "resign_with_expired_donor_certificate":
            self.write_event(target, self.resign(event, self._expired_donor(event, mutation)))
        elif op == "edit_chain_prev_hash":
            self.db.execute(
                f"UPDATE {CHAIN_TABLE} SET prev_hash = ? WHERE position = ?",
                (mutation["value"], target),
            )
        else:
            raise ValueError(f"unknown tamper op {op}")
        return named

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
        cursor = self.db.execute(
            "INSERT INTO stored_events VALUES (?,?,?,?)",
            (stored.originator_id.hex, version, stored.topic, stored.state),  # type: ignore[union-attr]
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _append_forged_copy(self, event: LedgerAggregate.Event, mutation: dict[str, Any]) -> int:
        """A copy of the event appended as its aggregate's next event, hashes and chain made
        consistent by the attacker; the signature is the original one (the attacker has no key)."""
        last_version = self.db.execute(
            "SELECT MAX(originator_version) FROM stored_events WHERE originator_id = ?",
            (event.originator_id.hex,),
        ).fetchone()[0]
        last_hash = self.db.execute(
            f"SELECT event_hash FROM {CHAIN_TABLE} WHERE originator_id = ? "
            "AND originator_version = ?",
            (event.originator_id.hex, last_version),
        ).fetchone()[0]
        forged = self.replace(
            event,
            originator_version=last_version + 1,
            prev_hash=last_hash,
            **mutation.get("changes", {}),
        )
        digest = sha256_hex(event_canonical_bytes(forged))
        forged = self.replace(forged, event_hash=digest)
        position = self._insert_raw(forged, last_version + 1)
        head = self.db.execute(
            f"SELECT event_hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1"
        ).fetchone()[0]
        self.db.execute(
            f"INSERT INTO {CHAIN_TABLE} VALUES (?,?,?,?,?)",
            (position, event.originator_id.hex, last_version + 1, digest, head),
        )
        return position

    def _swap(self, a: int, b: int, *, relink: bool) -> None:
        rows = {
            p: self.db.execute(
                "SELECT originator_id, originator_version, topic, state FROM stored_events "
                "WHERE rowid = ?",
                (p,),
            ).fetchone()
            for p in (a, b)
        }
        self.db.execute("BEGIN")
        self.db.execute("DELETE FROM stored_events WHERE rowid IN (?, ?)", (a, b))
        for position, source in ((a, b), (b, a)):
            row = rows[source]
            self.db.execute(
                "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state)"
                " VALUES (?,?,?,?,?)",
                (position, *tuple(row)),
            )
        if relink:
            links = {
                p: self.db.execute(
                    f"SELECT * FROM {CHAIN_TABLE} WHERE position = ?", (p,)
                ).fetchone()
                for p in (a, b)
            }
            before = links[a]["prev_hash"]
            self.db.execute(f"DELETE FROM {CHAIN_TABLE} WHERE position IN (?, ?)", (a, b))
            first, second = links[b], links[a]
            self.db.execute(
                f"INSERT INTO {CHAIN_TABLE} VALUES (?,?,?,?,?)",
                (
                    a,
                    first["originator_id"],
                    first["originator_version"],
                    first["event_hash"],
                    before,
                ),
            )
            self.db.execute(
                f"INSERT INTO {CHAIN_TABLE} VALUES (?,?,?,?,?)",
                (
                    b,
                    second["originator_id"],
                    second["originator_version"],
                    second["event_hash"],
                    first["event_hash"],
                ),
            )
            after = self.db.execute(
                f"SELECT position FROM {CHAIN_TABLE} WHERE position > ? ORDER BY position LIMIT 1",
                (b,),
            ).fetchone()
            if after:
                self.db.execute(
                    f"UPDATE {CHAIN_TABLE} SET prev_hash = ? WHERE position = ?",
                    (second["event_hash"], after[0]),
                )
        self.db.execute("COMMIT")


def encode_signature(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
