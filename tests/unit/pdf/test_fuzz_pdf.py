"""Fuzzing the PDF verifier (hypothesis): a genuine signed form with bytes flipped, inserted,
deleted, truncated or a range overwritten always gets a verdict (a report), or, when it is no
longer a usable signed PDF, `PdfUnreadable` (exit 2); never another exception."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from documents.pdf_verify import verify_pdf
from ledger.report import Verdict
from signing.errors import PdfUnreadable
from tests.pdf_samples import SampleStation

EXAMPLES = 40
OUTCOMES: Counter[str] = Counter()


@st.composite
def mutations(draw: st.DrawFn, size: int) -> list[tuple[str, int, bytes]]:
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "overwrite"]))
        where = draw(st.integers(0, size - 1))
        data = draw(st.binary(min_size=1, max_size=16))
        ops.append((kind, where, data))
    return ops


def mutate(pdf: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    out = bytearray(pdf)
    for kind, where, data in ops:
        where = min(where, max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[where] ^= data[0] or 0x01
        elif kind == "insert":
            out[where:where] = data
        elif kind == "delete":
            del out[where : where + len(data)]
        elif kind == "truncate":
            del out[where:]
        else:
            out[where : where + len(data)] = data
    return bytes(out)


@pytest.fixture(scope="module", autouse=True)
def _report_examples() -> object:
    yield None
    print(f"\nfuzz verify-pdf: {sum(OUTCOMES.values())} mutated PDFs, outcomes {dict(OUTCOMES)}")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_mutated_pdf_always_gets_a_verdict_or_is_unusable(
    data: st.DataObject, genuine: bytes, station: SampleStation
) -> None:
    ops = data.draw(mutations(len(genuine)))
    mutated = mutate(genuine, ops)
    try:
        report = verify_pdf(mutated, [station.pki.root_certificate])
    except PdfUnreadable:
        OUTCOMES["unusable (exit 2)"] += 1
        return
    assert report.verdict in (Verdict.PASSED, Verdict.FAILED, Verdict.INDETERMINATE)
    # the report renders as the CLI prints it (JSON and the readable failures)
    assert report.to_json()["verdict"] == report.verdict.value
    assert report.verdict is Verdict.PASSED or report.failures() or report.findings
    OUTCOMES[report.verdict.value] += 1
