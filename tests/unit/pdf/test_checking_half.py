"""verify-pdf runs only the checking half: nothing it imports, transitively, can sign or stamp."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ENTRY_POINTS = ("api.verify_pdf", "documents.pdf_verify")
CREATION = frozenset(
    {
        "signing.cms",
        "signing.pades",
        "signing.pki",
        "signing.tsa",
        "signing.timestamps",
        "signing.secrets",
        "ledger.signer",
    }
)
CREATION_PREFIXES = ("pyhanko.sign.signers", "pyhanko.sign.timestamps", "pyhanko.stamp")


def _imports(module: str) -> set[str]:
    path = ROOT / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _closure() -> set[str]:
    seen: set[str] = set()
    pending = list(ENTRY_POINTS)
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in _imports(module):
            if (
                name.split(".")[0] in ("signing", "ledger", "api", "projections")
                and (ROOT / (name.replace(".", "/") + ".py")).exists()
            ):
                pending.append(name)
            else:
                seen.add(name)
    return seen


def test_no_creation_code_is_reachable() -> None:
    reachable = _closure()
    assert not reachable & CREATION, sorted(reachable & CREATION)
    assert not [name for name in reachable if name.startswith(CREATION_PREFIXES)]
    assert "signing.pdf_validation" in reachable and "documents.pdf_evidence" in reachable
