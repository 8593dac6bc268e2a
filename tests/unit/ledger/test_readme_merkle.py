"""The README's standalone inclusion check, run as written: a regulator copies it, so it must be
a complete RFC 9162 §2.1.3.2 verifier. It must agree with every inclusion vector of
transparency-dev/merkle and of fixtures/vectors/merkle, and pass on an exported event."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.merkle import inclusion_proof, leaf_hash, root_from_leaves
from tests.unit.ledger.test_merkle_vectors import (
    MISSING_SHARED,
    OWN_VECTORS,
    SHARED_VECTORS,
    decode_hash,
    decode_proof,
    load,
    vector_files,
)

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    (snippet,) = [b for b in blocks if "def included(" in b]
    return str(snippet)


def included() -> Callable[..., bool]:
    """The README's `included`, defined by running the block up to its first use."""
    code = readme_snippet()
    namespace: dict[str, Any] = {}
    exec(code[: code.index("\nmeta = ")], namespace)
    function: Callable[..., bool] = namespace["included"]
    return function


def _vectors() -> list[Any]:
    paths = vector_files(OWN_VECTORS, "inclusion")
    if SHARED_VECTORS.is_dir():
        paths += vector_files(SHARED_VECTORS, "inclusion")
    return [pytest.param(p, id=p.as_posix().split("vectors/", 1)[-1]) for p in paths]


@pytest.mark.parametrize("path", _vectors())
def test_readme_snippet_agrees_with_the_vector(path: Path) -> None:
    vector = load(path)
    try:
        leaf = decode_hash(vector["leafHash"])
        proof = decode_proof(vector["proof"])
        root = decode_hash(vector["root"])
    except AssertionError:
        assert vector["wantErr"], f"{path}: undecodable but expected to verify"
        return
    ok = included()(leaf, vector["leafIdx"], vector["treeSize"], proof, root)
    assert ok is not vector["wantErr"], (path.name, vector["desc"])


def test_all_shared_inclusion_vectors_are_run() -> None:
    if not SHARED_VECTORS.is_dir():
        pytest.skip(MISSING_SHARED)
    shared = vector_files(SHARED_VECTORS, "inclusion")
    invalid = [p for p in shared if load(p)["wantErr"]]
    assert len(shared) > 90 and len(invalid) >= 90, (len(shared), len(invalid))


@pytest.mark.parametrize(("size", "index"), [(1, 0), (5, 4), (7, 3), (8, 0), (13, 12)])
def test_readme_snippet_runs_as_written_on_an_exported_event(
    size: int, index: int, tmp_path: Path
) -> None:
    events = [json.dumps({"n": n}).encode() for n in range(size)]
    import hashlib

    leaves = [leaf_hash(hashlib.sha256(e).digest()) for e in events]
    (tmp_path / "event.json").write_bytes(events[index])
    meta = {
        "leaf_index": index,
        "batch_size": size,
        "inclusion_path": [h.hex() for h in inclusion_proof(leaves, index)],
        "batch_root": root_from_leaves(leaves).hex(),
    }
    (tmp_path / "evidence.json").write_text(json.dumps({"trusted_time": meta}))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(readme_snippet(), {})
        assert out.getvalue() == "included in the batch\n"
        meta["leaf_index"] = (index + 1) % size if size > 1 else 1
        (tmp_path / "evidence.json").write_text(json.dumps({"trusted_time": meta}))
        with pytest.raises(AssertionError), contextlib.redirect_stdout(io.StringIO()):
            exec(readme_snippet(), {})
    finally:
        os.chdir(cwd)
