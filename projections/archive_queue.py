"""ArchiveQueue: sealed, completed donations not yet archived, as catalogue rows (domain.md §4).

Every donation has an item from registration on; its ``state`` is

* ``open``: not sealed yet;
* ``queued``: sealed with final status ``completed`` and not archived: the queue. ``ready`` is
  true when no co-signature was missing at sealing (the archive step checks completeness);
* ``not_archivable``: sealed with another final status (a deferred visit has no collection);
* ``archived``: in a transfer package (``ArchiveItem.DonationArchived`` or
  ``DonationReArchived``, carrying ``donation_id``): ``archive`` holds the reference, the
  catalogue number, the package and the donation version it holds. An amendment after that
  (``Donation.RecordAmended``) puts the donation back in the queue (``queued``, with
  ``supplement`` true): the next run archives it in a supplementary (修改型) package.

The catalogue row holds what the archive system lists: year, surname only, retention, collection
date, ID type, masked ID number, donation number, department (the station's setting at sealing)
and the number of electronic forms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.archive import ArchiveItem
from ledger.donation import Donation
from ledger.registry import StationConfig, station_id_for
from projections.base import Handler, LedgerProjection, Seen
from projections.store import Row, RowCache, Table, document, row_doc, text

TABLE = "archive_item"
STATIONS = "archive_station"
ITEMS = Table(
    TABLE,
    (text("donation_id"), text("donation_no"), text("state"), text("sealed_at"), document()),
    indexes=("state", "donation_no"),
)
STATION_TABLE = Table(STATIONS, (text("station_key"), document()))

#: Retention of a donation's archive (the seed catalogue shows 10年 on every row).
RETENTION = "10年"
#: Electronic forms per donation (电子全文数): questionnaire/consent, registration, collection.
FORMS_PER_DONATION = 3


def surname_only(name: str) -> str:
    """The catalogue shows the surname only: the first character, the rest masked."""
    return name[:1] + "*" * max(len(name) - 1, 0)


def _row(doc: dict[str, Any]) -> Row:
    return {
        "donation_id": doc["donation_id"],
        "donation_no": doc["donation_no"],
        "state": doc["state"],
        "sealed_at": doc["sealed_at"] or "",
        "doc": doc,
    }


class ArchiveQueueProjection(LedgerProjection):
    name = "archive_queue"
    title = "Archive queue"
    version = 2  # 2: archived and amended-after-archiving states
    tables = (ITEMS, STATION_TABLE)

    def handlers(self) -> Mapping[type, Handler]:
        return {
            StationConfig.StationConfigured: self._configured,
            StationConfig.StationSettingChanged: self._setting,
            Donation.DonorRegistered: self._registered,
            Donation.DonationNumberAssigned: self._numbered,
            Donation.ApheresisCollected: self._collected,
            Donation.DonationRecordSealed: self._sealed,
            Donation.RecordAmended: self._amended,
            ArchiveItem.DonationArchived: self._archived,
            ArchiveItem.DonationReArchived: self._archived,
        }

    def _configured(self, seen: Seen, rows: RowCache) -> None:
        event: StationConfig.StationConfigured = seen.event
        parameters = dict(event.parameters)
        rows.put(
            STATIONS,
            {
                "station_key": seen.key,
                "doc": {
                    "station_id": event.station_id,
                    "station_name": parameters.get("station_name", ""),
                    "department": parameters.get("department", ""),
                },
            },
        )

    def _setting(self, seen: Seen, rows: RowCache) -> None:
        event: StationConfig.StationSettingChanged = seen.event
        row = rows.get(STATIONS, seen.key)
        if row is None or event.key not in ("station_name", "department"):
            return
        row["doc"][event.key] = event.new_value
        rows.put(STATIONS, row)

    def _registered(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonorRegistered = seen.event
        doc = {
            "donation_id": seen.key,
            "donation_no": "",
            "state": "open",
            "ready": False,
            "station_id": event.station_id,
            "sealed_at": None,
            "catalogue": {
                "year": None,
                "name": surname_only(event.name),
                "retention": RETENTION,
                "collected_on": None,
                "id_type": event.id_type,
                "id_number_masked": event.id_number_masked,
                "donation_no": "",
                "department": "",
                "forms": FORMS_PER_DONATION,
            },
            "missing_signatures": 0,
        }
        rows.put(TABLE, _row(doc))

    def _numbered(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonationNumberAssigned = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        doc["donation_no"] = doc["catalogue"]["donation_no"] = event.donation_no
        rows.put(TABLE, _row(doc))

    def _collected(self, seen: Seen, rows: RowCache) -> None:
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        doc["catalogue"]["collected_on"] = seen.day
        rows.put(TABLE, _row(doc))

    def _sealed(self, seen: Seen, rows: RowCache) -> None:
        event: Donation.DonationRecordSealed = seen.event
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None:
            return
        doc["sealed_at"] = seen.recorded_at
        doc["missing_signatures"] = len(event.missing_slots)
        catalogue = doc["catalogue"]
        day = catalogue["collected_on"] or seen.day
        catalogue["year"] = int(day[:4])
        station = rows.get(STATIONS, str(station_id_for(doc["station_id"])))
        catalogue["department"] = station["doc"]["department"] if station else ""
        if event.final_status == "completed":
            doc["state"] = "queued"
            doc["ready"] = not event.missing_slots
        else:
            doc["state"] = "not_archivable"
            doc["final_status"] = event.final_status
        rows.put(TABLE, _row(doc))

    def _archived(self, seen: Seen, rows: RowCache) -> None:
        event: ArchiveItem.DonationArchived = seen.event
        doc = row_doc(rows, TABLE, event.donation_id)
        if doc is None:
            return
        doc["state"] = "archived"
        doc["supplement"] = False
        doc["archive"] = {
            "archive_ref": event.archive_ref,
            "catalogue_no": event.catalogue_no,
            "package_id": event.package_id,
            "package_type": event.package_type,
            "donation_version": event.donation_version,
            "archived_at": seen.recorded_at,
        }
        rows.put(TABLE, _row(doc))

    def _amended(self, seen: Seen, rows: RowCache) -> None:
        doc = row_doc(rows, TABLE, seen.key)
        if doc is None or doc["state"] != "archived":
            return
        doc["state"] = "queued"
        doc["supplement"] = True
        rows.put(TABLE, _row(doc))
