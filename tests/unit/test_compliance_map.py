"""docs/compliance.md: every clause of issue 14 is there, every test it names exists (looked up
with ast), and a clause without a test says ``not met`` with a reason."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "compliance.md"

#: The clauses issue 14 lists, as each heading begins.
REQUIRED = (
    *(f"§11.10({letter})" for letter in "abcdefghijk"),
    "§11.50",
    "§11.70",
    "§11.100",
    "§11.200",
    "§11.300",
    "Annex 11 §7",
    "Annex 11 §9",
    "Annex 11 §12",
    "Annex 11 §14",
    "Annex 11 §17",
    "ESL Art. 13",
    "ESL Art. 14",
    "DA/T 70 authenticity",
    "DA/T 70 integrity",
    "DA/T 70 usability",
    "DA/T 70 security",
)
STATUSES = ("met", "partly met", "not met")
_TEST_ID = re.compile(r"`(tests/[^`\s]+\.py::[^`\s]+)`")


@dataclass
class Clause:
    heading: str
    status: str = ""
    gap: str = ""
    tests: list[str] = field(default_factory=list)


def parse(text: str) -> list[Clause]:
    clauses: list[Clause] = []
    for line in text.splitlines():
        if line.startswith("### "):
            clauses.append(Clause(line[4:].strip()))
        elif clauses:
            clause = clauses[-1]
            if line.startswith("Status:"):
                clause.status = line.partition(":")[2].strip()
            elif line.startswith("Gap:"):
                clause.gap = line.partition(":")[2].strip()
            clause.tests.extend(_TEST_ID.findall(line))
    return clauses


@cache
def _definitions(path: Path) -> frozenset[str]:
    """``name`` of each top-level function and class, ``Class::method`` of each method."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
    return frozenset(names)


def missing_tests(test_ids: list[str], root: Path = ROOT) -> list[str]:
    """The ids naming no file, or no test in it (a parametrised ``[...]`` suffix is ignored)."""
    missing = []
    for test_id in test_ids:
        file_part, _, name = test_id.partition("::")
        name = name.split("[", 1)[0]
        path = root / file_part
        last = name.rsplit("::", 1)[-1]
        is_test = last.startswith(("test_", "Test"))
        if not (is_test and path.is_file() and name in _definitions(path)):
            missing.append(test_id)
    return missing


def problems(clauses: list[Clause]) -> list[str]:
    out = []
    for clause in clauses:
        if clause.status not in STATUSES:
            out.append(f"{clause.heading}: status {clause.status!r} is not one of {STATUSES}")
        if clause.status != "met" and not clause.gap:
            out.append(f"{clause.heading}: {clause.status or 'no status'} without a Gap: reason")
        if not clause.tests and clause.status != "not met":
            out.append(f"{clause.heading}: names no test and does not say 'not met'")
    return out


def test_every_required_clause_is_mapped() -> None:
    headings = [c.heading for c in parse(DOC.read_text(encoding="utf-8"))]
    absent = [
        r for r in REQUIRED if not any(re.match(re.escape(r) + r"[\s:]", h) for h in headings)
    ]
    assert not absent, f"clauses missing from {DOC.name}: {absent}"


def test_every_named_test_exists() -> None:
    clauses = parse(DOC.read_text(encoding="utf-8"))
    ids = [t for c in clauses for t in c.tests]
    assert len(ids) >= 60
    assert missing_tests(ids) == []


def test_every_clause_has_a_test_or_says_not_met_with_a_reason() -> None:
    clauses = parse(DOC.read_text(encoding="utf-8"))
    assert problems(clauses) == []
    not_met = [c.heading.split(" ")[0] for c in clauses if c.status == "not met"]
    assert not_met  # the map is honest: some clauses are not met, and say so


def test_a_test_id_that_does_not_exist_is_caught() -> None:
    real = "tests/unit/test_compliance_map.py::test_every_named_test_exists"
    assert missing_tests([real]) == []
    assert missing_tests(
        [
            "tests/unit/test_compliance_map.py::test_no_such_test",
            "tests/unit/no_such_file.py::test_x",
            "tests/unit/test_compliance_map.py::Clause",  # a class that is not a test
            "tests/unit/test_compliance_map.py::parse",  # a helper, not a test
        ]
    ) == [
        "tests/unit/test_compliance_map.py::test_no_such_test",
        "tests/unit/no_such_file.py::test_x",
        "tests/unit/test_compliance_map.py::Clause",
        "tests/unit/test_compliance_map.py::parse",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("### §1 x\nStatus: met\nFeature: y\nTests:\n", "names no test"),
        ("### §1 x\nStatus: not met\nFeature: y\nTests:\n", "without a Gap"),
        ("### §1 x\nStatus: fine\nTests:\n- `tests/unit/test_layers.py::test_x`\n", "is not one"),
    ],
)
def test_a_clause_without_a_test_or_reason_is_caught(text: str, expected: str) -> None:
    assert any(expected in p for p in problems(parse(text)))
