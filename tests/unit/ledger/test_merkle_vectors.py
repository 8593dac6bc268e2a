"""Merkle proof vectors, as data files: transparency-dev/merkle's testdata and our own.

Every file under ``inclusion/`` and ``consistency/`` (subfolders included) is a test. A file with
``"wantErr": true`` must raise :class:`MerkleVerificationError`, one with ``false`` must verify.
Our own files (fixtures/vectors/merkle) also name the error kind (``wantErrKind``).

The shared vectors are found in ``$LEDGER_SHARED_DIR/vectors/transparency-dev-merkle`` or else in
``shared/`` beside the project root; when they are missing, their tests are skipped with the
reason.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from _pytest.mark.structures import ParameterSet

from ledger.merkle import (
    MerkleVerificationError,
    RootMismatchError,
    verify_consistency,
    verify_inclusion,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SHARED_DIR_ENV = "LEDGER_SHARED_DIR"
OWN_VECTORS = PROJECT_ROOT / "fixtures" / "vectors" / "merkle"
KINDS = ("inclusion", "consistency")


def shared_vectors_dir() -> Path:
    shared = os.environ.get(SHARED_DIR_ENV) or str(PROJECT_ROOT / ".." / "shared")
    return (Path(shared) / "vectors" / "transparency-dev-merkle").resolve()


SHARED_VECTORS = shared_vectors_dir()
MISSING_SHARED = (
    f"transparency-dev/merkle vectors not found at {SHARED_VECTORS} "
    f"(set {SHARED_DIR_ENV} to the folder holding vectors/transparency-dev-merkle)"
)


def vector_files(base: Path, kind: str) -> list[Path]:
    return sorted((base / kind).rglob("*.json"))


def vector_params(base: Path, kind: str, missing_reason: str) -> list[ParameterSet]:
    if not base.is_dir():
        return [pytest.param(None, id="missing", marks=pytest.mark.skip(reason=missing_reason))]
    return [
        pytest.param(path, id=path.relative_to(base).as_posix())
        for path in vector_files(base, kind)
    ]


# --------------------------------------------------------------------------------------------
# Reading a vector (JSON shape of transparency-dev/merkle testdata: base64 hashes, null proofs)
# --------------------------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    vector = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(vector, dict), f"{path}: not a JSON object"
    assert isinstance(vector.get("desc"), str), f"{path}: no desc"
    assert isinstance(vector.get("wantErr"), bool), f"{path}: no boolean wantErr"
    return cast(dict[str, Any], vector)


def decode_hash(value: object) -> bytes:
    assert isinstance(value, str), f"hash is not a base64 string: {value!r}"
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise AssertionError(f"bad base64 {value!r}") from error


def decode_proof(value: object) -> list[bytes]:
    if value is None:  # Go marshals a nil slice as null.
        return []
    assert isinstance(value, list), f"proof is not a list: {value!r}"
    return [decode_hash(node) for node in value]


def decode_size(value: object) -> int:
    assert isinstance(value, int) and not isinstance(value, bool), f"bad size {value!r}"
    return value


def run_inclusion(vector: dict[str, Any]) -> None:
    verify_inclusion(
        decode_size(vector["leafIdx"]),
        decode_size(vector["treeSize"]),
        decode_hash(vector["leafHash"]),
        decode_proof(vector["proof"]),
        decode_hash(vector["root"]),
    )


def run_consistency(vector: dict[str, Any]) -> None:
    verify_consistency(
        decode_size(vector["size1"]),
        decode_size(vector["size2"]),
        decode_hash(vector["root1"]),
        decode_hash(vector["root2"]),
        decode_proof(vector["proof"]),
    )


RUNNERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "inclusion": run_inclusion,
    "consistency": run_consistency,
}


def outcome(kind: str, vector: dict[str, Any]) -> MerkleVerificationError | None:
    try:
        RUNNERS[kind](vector)
    except MerkleVerificationError as error:
        return error
    return None


def assert_agrees(kind: str, path: Path) -> MerkleVerificationError | None:
    vector = load(path)
    error = outcome(kind, vector)
    if vector["wantErr"]:
        assert error is not None, f"{vector['desc']!r} verified, but the file expects an error"
    else:
        assert error is None, f"{vector['desc']!r} was rejected ({error}), the file expects success"
    return error


# --------------------------------------------------------------------------------------------
# transparency-dev/merkle testdata
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", vector_params(SHARED_VECTORS, "inclusion", MISSING_SHARED))
def test_shared_inclusion_vector(path: Path) -> None:
    assert_agrees("inclusion", path)


@pytest.mark.parametrize("path", vector_params(SHARED_VECTORS, "consistency", MISSING_SHARED))
def test_shared_consistency_vector(path: Path) -> None:
    assert_agrees("consistency", path)


def test_shared_vectors_are_all_collected() -> None:
    if not SHARED_VECTORS.is_dir():
        pytest.skip(MISSING_SHARED)
    every_file = set(SHARED_VECTORS.rglob("*.json"))
    collected = {path for kind in KINDS for path in vector_files(SHARED_VECTORS, kind)}
    assert every_file == collected
    for kind in KINDS:
        files = vector_files(SHARED_VECTORS, kind)
        assert files, f"no {kind} vectors under {SHARED_VECTORS}"
        assert any(not load(path)["wantErr"] for path in files)


# --------------------------------------------------------------------------------------------
# Our own vectors (fixtures/vectors/merkle)
# --------------------------------------------------------------------------------------------

MISSING_OWN = f"our vectors are missing at {OWN_VECTORS}"


@pytest.mark.parametrize("kind", KINDS)
def test_own_vectors_exist(kind: str) -> None:
    assert vector_files(OWN_VECTORS, kind), f"run {OWN_VECTORS / 'generate.py'}"


@pytest.mark.parametrize("path", vector_params(OWN_VECTORS, "inclusion", MISSING_OWN))
def test_own_inclusion_vector(path: Path) -> None:
    check_own("inclusion", path)


@pytest.mark.parametrize("path", vector_params(OWN_VECTORS, "consistency", MISSING_OWN))
def test_own_consistency_vector(path: Path) -> None:
    check_own("consistency", path)


def check_own(kind: str, path: Path) -> None:
    vector = load(path)
    error = assert_agrees(kind, path)
    if error is None:
        assert vector["wantErrKind"] is None
        return
    assert str(error.kind) == vector["wantErrKind"], f"{vector['desc']!r}: {error}"
    if isinstance(error, RootMismatchError):
        expected_fields = ("root",) if kind == "inclusion" else ("root1", "root2")
        assert error.expected in {decode_hash(vector[field]) for field in expected_fields}
        assert error.calculated != error.expected


def load_generator() -> ModuleType:
    name = "_merkle_vectors_generate"
    spec = importlib.util.spec_from_file_location(name, OWN_VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built.
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def test_own_vectors_are_up_to_date() -> None:
    generator = load_generator()
    wanted = cast(dict[str, str], generator.build_files())
    on_disk = cast(dict[str, str], generator.existing_files(OWN_VECTORS))
    assert sorted(wanted) == sorted(on_disk), "run fixtures/vectors/merkle/generate.py"
    stale = [path for path, content in wanted.items() if on_disk[path] != content]
    assert not stale, f"stale vector files: {stale}"
