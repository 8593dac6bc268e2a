"""What every read model shares: eventsourcing's ``Projection`` with a view store, dispatch by
event class, and the facts each view keeps about an event (who, when, where in the log),
computed once per event however many views read it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.donation import COMMON_FIELDS, Donation
from projections.eventtime import iso, recorded_at, station_day
from projections.store import RowCache, Table, ViewStore

#: The upstream application whose notification log the views track (``LedgerApp.name``).
APPLICATION_NAME = "Ledger"


class Seen:
    """One event as the views see it: the decoded event, its log position, and what the views
    ask of it, each computed on first use. The dicts it hands out are shared between views:
    read them, copy before changing them."""

    __slots__ = ("_day", "_key", "_meta", "_rules", "_signed", "_values", "event", "position")

    def __init__(self, event: Any, position: int) -> None:
        self.event = event
        self.position = position
        self._key: str | None = None
        self._meta: dict[str, Any] | None = None
        self._signed: dict[str, Any] | None = None
        self._values: dict[str, Any] | None = None
        self._rules: dict[str, Any] | None = None
        self._day: str | None = None

    @property
    def key(self) -> str:
        """The aggregate id as text (a donation's id for donation events)."""
        if self._key is None:
            self._key = str(self.event.originator_id)
        return self._key

    @property
    def recorded_at(self) -> str:
        return str(self.meta["recorded_at"])

    @property
    def day(self) -> str:
        """The station's calendar day of ``recorded_at`` (projections.eventtime)."""
        if self._day is None:
            self._day = station_day(recorded_at(self.event))
        return self._day

    @property
    def meta(self) -> dict[str, Any]:
        """Who recorded the event, when, and where it sits in the log and its aggregate."""
        if self._meta is None:
            event = self.event
            self._meta = {
                "position": self.position,
                "version": event.originator_version,
                "event_hash": event.event_hash,
                "actor": event.actor,
                "actor_role": event.actor_role,
                "recorded_at": iso(recorded_at(event)),
            }
        return self._meta

    @property
    def signed(self) -> dict[str, Any]:
        """``meta`` and ``signature_sha256`` (see ``signature_sha256``)."""
        if self._signed is None:
            self._signed = {**self.meta, "signature_sha256": signature_sha256(self.event)}
        return self._signed

    @property
    def values(self) -> dict[str, Any]:
        """The step's recorded values (``ledger.donation.step_values``)."""
        if self._values is None:
            event = self.event
            self._values = {name: getattr(event, name) for name in value_fields(type(event))}
        return self._values

    @property
    def staff(self) -> str:
        return staff_id(self.event.actor)

    @property
    def rules(self) -> dict[str, Any]:
        """The step's rule outcomes: the rule set, the ids that passed, and every other outcome
        (fail, alert, overridden, acknowledged) in full. A pass's value is the step's value and
        its limit is in the named rule set, so nothing is lost by listing passes by id."""
        if self._rules is None:
            passed: list[str] = []
            fired: list[dict[str, Any]] = []
            for outcome in self.event.rule_outcomes:
                if outcome.get("outcome") == "pass":
                    passed.append(outcome["rule_id"])
                else:
                    fired.append(outcome)
            self._rules = {"rule_set": self.event.rule_set, "passed": passed, "fired": fired}
        return self._rules

    def count_fired(self, outcome: str) -> int:
        return sum(1 for o in self.rules["fired"] if o.get("outcome") == outcome)


Handler = Callable[[Seen, RowCache], None]


class LedgerProjection(Projection[ViewStore]):
    """A read model of the ledger: tables, and a handler per event class it reads."""

    tables: ClassVar[tuple[Table, ...]] = ()
    title: ClassVar[str] = ""
    #: Raise when the projection's logic changes: stored views of another version are emptied
    #: on open and rebuilt by the next catch-up (``ViewStore.ensure_schema``).
    version: ClassVar[int] = 1

    def __init__(self, view: ViewStore) -> None:
        super().__init__(view)
        self._handlers: dict[type, Handler] = dict(self.handlers())

    @abstractmethod
    def handlers(self) -> Mapping[type, Handler]:
        """Event class -> handler(seen, rows). Other events are ignored."""

    @property
    def event_classes(self) -> tuple[type, ...]:
        return tuple(self._handlers)

    def apply(self, seen: Seen, rows: RowCache) -> None:
        handler = self._handlers.get(type(seen.event))
        if handler is not None:
            handler(seen, rows)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """eventsourcing's entry point: one event, its view changes and tracking in one
        transaction. Already processed positions are skipped (tracking is monotonic)."""
        view = self.view
        with view.write_transaction() as curs:
            view.lock(curs)
            if view.position(curs, tracking.application_name) >= tracking.notification_id:
                return
            rows = RowCache(view)
            rows.bind(curs)
            self.apply(Seen(domain_event, tracking.notification_id), rows)
            rows.flush(curs)
            view.track(curs, tracking)


# -- facts about an event -------------------------------------------------------------------------

_FIELDS: dict[type, tuple[str, ...]] = {}


def value_fields(event_class: type) -> tuple[str, ...]:
    """The step's recorded fields: the event's declared fields without identity and evidence
    (the same set as ``ledger.donation.step_values``)."""
    names = _FIELDS.get(event_class)
    if names is None:
        names = tuple(
            f.name for f in dataclasses.fields(event_class) if f.name not in COMMON_FIELDS
        )
        _FIELDS[event_class] = names
    return names


def signature_sha256(event: Any) -> str:
    """SHA-256 of the signature as the event carries it: the base64 text of the DER CMS
    signature (``ledger export-event POS``, then ``base64 -w0 sig.p7s | sha256sum``)."""
    return hashlib.sha256(str(event.signature).encode("ascii", "replace")).hexdigest()


def staff_id(actor: str) -> str:
    """``STAFF:P001`` -> ``P001``; a donor is ``donor`` (donor references stay out of metrics)."""
    kind, _, ident = actor.partition(":")
    if kind == "STAFF":
        return ident
    return "donor" if kind == "DONOR" else actor


def step_event_classes() -> tuple[type[Donation.StepEvent], ...]:
    """Every workflow step event (registration is a ``Created`` event and is handled apart)."""
    return tuple(
        cls
        for cls in vars(Donation).values()
        if isinstance(cls, type) and issubclass(cls, Donation.StepEvent) and cls.STEP
    )
