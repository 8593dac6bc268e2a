"""Signed, hash-linked events: the base every ledger aggregate and event builds on.

A public command method does all non-deterministic work (clock, hashing, signing) and passes the
results into the event; an event's ``apply_state`` only assigns state, because it runs
again on every
replay (shared/docs/pitfalls.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar, cast
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from ledger.canonical import GENESIS_HASH, UPCAST_FIELDS, event_canonical_bytes, sha256_hex
from signing.errors import LedgerError


class WorkflowError(LedgerError, ValueError):
    """A command that the donation's state or the signer's role does not allow."""


class ConcurrentChange(WorkflowError):
    """Another writer saved the same record first (optimistic concurrency): nothing written."""


class Signer(Protocol):
    """The acting person's signing capability (a staff, donor or system credential)."""

    @property
    def subject_id(self) -> str:
        """``STAFF:<id>`` or ``DONOR:<ref>``: the certificate subject's serialNumber."""
        ...

    @property
    def role(self) -> str: ...

    def sign(self, data: bytes, signing_time: datetime) -> str:
        """A detached CMS signature over *data*, DER, base64."""
        ...


class LedgerAggregate(Aggregate):
    """An aggregate whose every event is signed by its actor and linked to its predecessor."""

    head_hash: str = GENESIS_HASH

    class Event(Aggregate.Event):
        actor: str
        actor_role: str
        prev_hash: str
        rule_set: str
        rule_outcomes: list[dict[str, Any]]
        signature: str
        event_hash: str

        def apply(self, aggregate: Any) -> None:
            aggregate.head_hash = self.event_hash
            self.apply_state(aggregate)

        def apply_state(self, aggregate: Any) -> None:
            """Assign the event's effect on the aggregate (state only, no side effects)."""

    class Created(Event, Aggregate.Created):
        pass

    def _record(
        self,
        event_class: type[LedgerAggregate.Event],
        signer: Signer,
        *,
        rule_set: str = "",
        rule_outcomes: Iterable[Mapping[str, Any]] = (),
        **fields: Any,
    ) -> None:
        """Sign and trigger the next event of this aggregate."""
        timestamp = event_class.create_timestamp()
        common = _common(signer, self.head_hash, rule_set, rule_outcomes)
        # eventsourcing makes event classes dataclasses at run time; mypy sees only the base.
        provisional = cast(Any, event_class)(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=timestamp,
            signature="",
            event_hash="",
            **common,
            **fields,
        )
        body = event_canonical_bytes(provisional)
        self.trigger_event(
            event_class,
            timestamp=timestamp,
            signature=signer.sign(body, timestamp),
            event_hash=sha256_hex(body),
            **common,
            **fields,
        )

    @classmethod
    def _open(
        cls,
        event_class: type[LedgerAggregate.Created],
        signer: Signer,
        aggregate_id: UUID,
        *,
        rule_set: str = "",
        rule_outcomes: Iterable[Mapping[str, Any]] = (),
        **fields: Any,
    ) -> Self:
        """Sign and create the aggregate with its first event."""
        timestamp = event_class.create_timestamp()
        common = _common(signer, GENESIS_HASH, rule_set, rule_outcomes)
        provisional = cast(Any, event_class)(
            originator_topic=get_topic(cls),
            originator_id=aggregate_id,
            originator_version=cls.INITIAL_VERSION,
            timestamp=timestamp,
            signature="",
            event_hash="",
            **common,
            **fields,
        )
        body = event_canonical_bytes(provisional)
        return cls._create(
            event_class,
            id=aggregate_id,
            timestamp=timestamp,
            signature=signer.sign(body, timestamp),
            event_hash=sha256_hex(body),
            **common,
            **fields,
        )


def _common(
    signer: Signer,
    prev_hash: str,
    rule_set: str,
    rule_outcomes: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    return {
        "actor": signer.subject_id,
        "actor_role": signer.role,
        "prev_hash": prev_hash,
        "rule_set": rule_set,
        "rule_outcomes": [dict(outcome) for outcome in rule_outcomes],
    }


def add_fields(state: dict[str, Any], **defaults: Any) -> None:
    """Upcast a stored event's state: give each field its class declares since then the value
    that means "not recorded", and note that the event was recorded without them.

    The fields named in ``state[UPCAST_FIELDS]`` stay out of the event's canonical body
    (``ledger.canonical``): the actor hashed and signed the body without them, so an old event
    keeps its hash and signature.
    """
    for name, value in defaults.items():
        if name not in state:
            state[name] = value
            state[UPCAST_FIELDS] = (*state.get(UPCAST_FIELDS, ()), name)


TLedgerAggregate = TypeVar("TLedgerAggregate", bound=LedgerAggregate)


def require_role(signer: Signer, allowed: Iterable[str], what: str) -> None:
    allowed_roles = tuple(allowed)
    if signer.role not in allowed_roles:
        raise WorkflowError(
            f"{what} must be signed by {' or '.join(allowed_roles)}, not {signer.role}"
        )
