"""The station's RFC 3161 time-stamping authority served over HTTP (``ledger tsa serve``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.settings import Settings
from services.station import Station
from signing.tsa import TsaServer

__all__ = ["ServeTsa", "serve_tsa"]


@dataclass(frozen=True)
class ServeTsa:
    host: str = "127.0.0.1"
    port: int = 3161


def serve_tsa(settings: Settings, command: ServeTsa, ready: Callable[[str], None]) -> None:
    """Answer RFC 3161 requests until interrupted (Ctrl-C); `ready` is told the URL first."""
    with Station.open(settings) as station:
        server = TsaServer(station.local_tsa(), host=command.host, port=command.port)
        ready(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
