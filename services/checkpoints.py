"""Checkpoints, stamping and the witness: the use cases behind `ledger checkpoint` and `stamp`.

A checkpoint (``ledger.checkpoints``) signs the ledger's size, Merkle root and chain head. Kept
only in the database, it proves nothing against the database's administrator, who can delete or
re-issue it; published to a witness the administrator does not control, it pins the history: a
later `ledger verify --witness` fails on any rollback or fork of what a witnessed checkpoint
covers. A witness is a file (one JSON line appended per checkpoint: put it on another machine's
share, an append-only mount, or copy it off regularly) or an http(s) URL that accepts a POST of
the checkpoint JSON and answers a GET with every checkpoint it holds, one JSON object a line.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.checkpoints import CheckpointError, SignedCheckpoint, sign_checkpoint, store_checkpoint
from ledger.verify_time import WitnessedCheckpoint
from services.files import write_atomically
from signing.errors import InputError, LedgerError

if TYPE_CHECKING:
    from services.settings import Settings
    from services.station import Station

__all__ = [
    "WitnessError",
    "check_writable",
    "default_checkpoint_path",
    "issue",
    "publish",
    "read_witness",
    "stamp_pending",
    "write_checkpoint_file",
]

WITNESS_TIMEOUT_S = 10.0


class WitnessError(LedgerError):
    """A witness that cannot be written to or read."""


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def check_writable(path: Path, what: str) -> None:
    """Refuse, before anything is signed or stored, a file path we could not write."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"{what} {path} is a directory")
    if not parent.is_dir():
        raise InputError(f"{what} {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{what} {path} is not writable")


def default_checkpoint_path(settings: Settings, size: int) -> Path:
    """Where a checkpoint of `size` events is kept when no file is named:
    ``HOME/checkpoints/checkpoint-<size, 9 digits>.json`` (the folder is made)."""
    path = settings.home / "checkpoints" / f"checkpoint-{size:09d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_checkpoint_file(path: Path, checkpoint: SignedCheckpoint) -> None:
    """Write the checkpoint JSON atomically (a temporary file in the same folder, renamed)."""
    text = json.dumps(checkpoint.to_json(), indent=2) + "\n"
    try:
        write_atomically(path, text.encode("utf-8"))  # no temporary file left when it fails
    except OSError as exc:
        raise InputError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc


def issue(
    station: Station, out: Path | None = None, witness: str | None = None
) -> SignedCheckpoint:
    """Stamp what is pending, then sign a checkpoint, write it to *out*, keep it in the store
    and publish it to the witness (*witness*, else the configured one).

    Bad input (an *out* or witness file that cannot be written) is refused before anything is
    signed or stored; the row is stored only once *out* is written.
    """
    target = station.settings.witness if witness is None else witness
    if out is not None:
        check_writable(out, "checkpoint file")
    if target and not is_url(target):
        check_writable(Path(target), "witness file")
    station.stamper().flush()
    signed = sign_checkpoint(
        station.store, station.system, station.timestamper(), station.settings.station_id
    )
    if out is not None:
        write_checkpoint_file(out, signed)
    store_checkpoint(station.store, signed)
    if target:
        publish(target, signed)
    return signed


def stamp_pending(station: Station) -> tuple[int, int]:
    """Timestamp every pending event now: (events that were pending, batches cut)."""
    stamper = station.stamper()
    pending = len(stamper.pending(limit=10**9))
    return pending, stamper.flush()


# -- the witness ---------------------------------------------------------------------------------


def publish(target: str, checkpoint: SignedCheckpoint) -> None:
    """Append *checkpoint* to the witness *target* (a file path or an http(s) URL)."""
    line = json.dumps(checkpoint.to_json(), sort_keys=True, separators=(",", ":"))
    if is_url(target):
        request = urllib.request.Request(
            target,
            data=line.encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=WITNESS_TIMEOUT_S) as response:
                if response.status // 100 != 2:
                    raise WitnessError(f"witness {target} answered HTTP {response.status}")
        except (urllib.error.URLError, OSError) as exc:
            raise WitnessError(
                f"checkpoint of {checkpoint.size} events stored but not witnessed: {target}: {exc}"
            ) from exc
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise WitnessError(
            f"checkpoint of {checkpoint.size} events stored but not witnessed: "
            f"{target}: {exc.strerror or exc}"
        ) from exc


def read_witness(target: str) -> list[WitnessedCheckpoint]:
    """Every checkpoint a witness holds; `InputError` naming the witness (and line) otherwise."""
    if is_url(target):
        try:
            with urllib.request.urlopen(target, timeout=WITNESS_TIMEOUT_S) as response:
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read witness {target}: {exc}") from exc
    else:
        try:
            text = Path(target).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise InputError(f"cannot read witness {target}: {reason}") from exc
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        source = f"{target}:{number}"
        try:
            out.append(WitnessedCheckpoint(source, SignedCheckpoint.from_json(json.loads(line))))
        except (json.JSONDecodeError, CheckpointError) as exc:
            raise InputError(f"witness {source} is not a checkpoint: {exc}") from exc
    if not out:
        raise InputError(f"witness {target} holds no checkpoint")
    return out
