"""The floors: signing < ledger < projections < documents < services < api. An import the other
way is a design bug."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("signing", "ledger", "projections", "documents", "services", "api")
ALLOWED = {
    "signing": set(),
    "ledger": {"signing"},
    "projections": {"signing", "ledger"},
    "documents": {"signing", "ledger", "projections"},
    "services": {"signing", "ledger", "projections", "documents"},
    "api": {"signing", "ledger", "projections", "documents", "services"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_lower_floors(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) - ALLOWED[package] - {package})
        for path in (ROOT / package).rglob("*.py")
        if _imports(path) - ALLOWED[package] - {package}
    }
    assert not offenders, offenders


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from api.cli import main\nimport ledger.verify\n")
    assert _imports(bad) == {"api", "ledger"}


def test_signature_checking_imports_no_signing_code() -> None:
    """A regulator runs only the checking half (signing/validation.py must not import cms.py)."""
    tree = ast.parse((ROOT / "signing" / "validation.py").read_text(encoding="utf-8"))
    modules = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "signing.cms" not in modules
