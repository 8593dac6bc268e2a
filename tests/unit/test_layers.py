"""The floors: signing < ledger < projections < documents < services < api. An import the other
way is a design bug; and api/ (the adapters) reaches the floors below only through services/
(the use cases), the report types it formats and the error base."""

from __future__ import annotations

import ast
import fnmatch
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


#: What an adapter in api/ may import of the floors below: the use cases (services/), the report
#: types it formats (documents/ names ending in ``Report``, ``ledger.report``) and the error base
#: it maps to exit codes (``signing.errors``). Nothing else: no aggregate, store, file format or
#: projection (docs/design.md, "Floors").
API_MAY_IMPORT = ("services", "services.*", "ledger.report", "signing.errors")
API_REPORT_TYPES_FROM = "documents.*"

#: Exceptions, each with its reason (none today: keep it that way).
API_EXCEPTIONS: dict[str, set[str]] = {}


def _first_party_imports(path: Path) -> set[tuple[str, str]]:
    """(module, name) of every import from our packages; ``import x.y`` gives (x.y, "")."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update((alias.name, "") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update((node.module, alias.name) for alias in node.names)
    return {(m, n) for m, n in found if m.split(".")[0] in PACKAGES}


def _api_may_import(module: str, name: str) -> bool:
    if module.split(".")[0] == "api":
        return True
    if any(fnmatch.fnmatchcase(module, pattern) for pattern in API_MAY_IMPORT):
        return True
    return fnmatch.fnmatchcase(module, API_REPORT_TYPES_FROM) and name.endswith("Report")


def _api_offenders(root: Path) -> dict[str, list[str]]:
    offenders = {}
    for path in sorted(root.rglob("*.py")):
        relative = str(path.relative_to(root.parent))
        allowed = API_EXCEPTIONS.get(relative, set())
        bad = sorted(
            f"{module}.{name}" if name else module
            for module, name in _first_party_imports(path)
            if not _api_may_import(module, name) and module not in allowed
        )
        if bad:
            offenders[relative] = bad
    return offenders


def test_api_imports_only_use_cases_report_types_and_errors() -> None:
    offenders = _api_offenders(ROOT / "api")
    assert not offenders, offenders


def test_the_api_rule_sees_a_violation(tmp_path: Path) -> None:
    api = tmp_path / "api"
    api.mkdir()
    (api / "ok.py").write_text(
        "from services.reports import quality\nfrom ledger.report import Verdict\n"
        "from documents.pdf_verify import PdfVerificationReport\n"
        "from signing.errors import InputError\nfrom api.progress import progress_bar\n"
    )
    (api / "bad.py").write_text(
        "from ledger.stores import ChainReader\nimport projections.queries\n"
        "from documents.forms.fonts import form_font\n"
    )
    assert _api_offenders(api) == {
        "api/bad.py": [
            "documents.forms.fonts.form_font",
            "ledger.stores.ChainReader",
            "projections.queries",
        ]
    }


def test_signature_checking_imports_no_signing_code() -> None:
    """A regulator runs only the checking half (signing/validation.py must not import cms.py)."""
    tree = ast.parse((ROOT / "signing" / "validation.py").read_text(encoding="utf-8"))
    modules = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "signing.cms" not in modules
