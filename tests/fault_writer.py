"""The writer the kill -9 fault tests start and kill (tests/integration/test_faults.py).

Run as ``python -m tests.fault_writer``: a zygote that imports everything once, prints
``ready``, then for each stdin line ``HOME<TAB>DB<TAB>ACK_FILE`` forks a writer and prints its
pid. The writer opens the station, runs a stamper beside it (small batches), and registers
donations and records their general examination forever; after each save has committed it
appends ``<donation id> <events of the donation>`` to ACK_FILE (one ``write``: a line is whole
or absent). What the file holds is what was acknowledged to a caller before the kill.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from pydantic import SecretStr

from services.settings import Settings
from services.station import Station
from tests.workflow import register


def _writer(home: str, db: str, ack_path: str) -> None:
    settings = Settings(
        db=db,
        home=Path(home),
        passphrase=SecretStr("test-only-passphrase"),
        station_id="TEST-01",
        batch_max_events=8,
        batch_max_delay_ms=20,
    )
    from ledger.timestamping import StamperThread

    station = Station.open(settings)
    stamper = StamperThread(station.stamper()).start()
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    app = station.app
    try:
        while True:
            donation_id = register(station)
            os.write(fd, f"{donation_id} 1\n".encode())
            donor = station.donor_signer(donation_id, fingerprint_verified=True)
            app.sign_consent(
                donation_id,
                donor,
                answers={"recent_illness": False},
                consent=True,
                fingerprint_verified=True,
                donor_certificate_serial=donor.certificate_serial,
            )
            os.write(fd, f"{donation_id} 2\n".encode())
    finally:  # not reached on SIGKILL, which is the point
        stamper.stop(flush=False)
        station.close()


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        home, db, ack = line.rstrip("\n").split("\t")
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                _writer(home, db, ack)
            except BaseException:
                import traceback

                Path(ack + ".err").write_text(traceback.format_exc())
                code = 1
            finally:
                os._exit(code)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
