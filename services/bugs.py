"""What an entry point does with an unexpected exception: it is a bug, so keep its traceback.

Expected failures subclass `signing.errors.LedgerError` and are shown as one line. Anything else
reaching an entry point is reported in one line that says it is a bug and where the traceback
went: printed to stderr when ``LEDGER_DEBUG=1``, otherwise written to a file under
``LEDGER_HOME/bugs/`` (or the system's temporary folder when no home is known or writable).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

#: sysexits.h EX_SOFTWARE: an internal software error.
EXIT_BUG = 70


def report_bug(exc: BaseException, home: Path | None) -> str:
    """Keep the traceback of `exc`; return where it went, as words for the one-line message."""
    text = "".join(traceback.format_exception(exc))
    if os.environ.get("LEDGER_DEBUG", "") not in ("", "0"):
        sys.stderr.write(text)
        return "traceback above (LEDGER_DEBUG=1)"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    for folder in ([home / "bugs"] if home is not None else []) + [Path(tempfile.gettempdir())]:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"ledger-bug-{stamp}-{os.getpid()}.txt"
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        return f"traceback written to {path} (or rerun with LEDGER_DEBUG=1)"
    sys.stderr.write(text)
    return "traceback above (no folder was writable)"
