"""Loading the versioned rule data: strict readers for the JSON files under ``ledger/rulesets/``.

A published file is referenced by stored events as `<id>@<version>` (e.g. `gb18467-2011@1`) and
must therefore return the same content forever: never edit one, publish a new version.
`RuleSet.digest` fingerprints the content; the tests pin it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterator, Mapping
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ledger.rules.model import (
    _OPS,
    CONTEXT_VALUES,
    STEPS,
    Limit,
    Number,
    Rule,
    RuleKind,
    RuleSet,
)

_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_VERSION = re.compile(r"[1-9][0-9]*")
_RULE_ID = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)+")
_IDENT = re.compile(r"[a-z][a-z0-9_]*")
_FILE = re.compile(r"(?P<name>[a-z0-9]+(?:-[a-z0-9]+)*)\.v(?P<version>[1-9][0-9]*)\.json")
_RULE_KEYS = frozenset(
    {"id", "kind", "step", "field", "op", "limit", "unit", "message_zh", "message_en", "clause"}
)


class _Document:
    """Strict reader for one JSON object with a path prefix for error messages."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def fail(self, message: str) -> ValueError:
        return ValueError(f"{self.where}: {message}")

    def keys(self, required: Collection[str], optional: Collection[str] = ()) -> None:
        if missing := sorted(set(required) - set(self.data)):
            raise self.fail(f"missing {', '.join(missing)}")
        if extra := sorted(set(self.data) - set(required) - set(optional)):
            raise self.fail(f"unknown {', '.join(extra)}")

    def text(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key} must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(f"{key} {value!r} must match {pattern.pattern}")
        return value

    def day(self, key: str) -> date:
        try:
            return date.fromisoformat(self.text(key))
        except ValueError:
            raise self.fail(f"{key} must be a YYYY-MM-DD date") from None

    def children(self, key: str) -> Iterator[_Document]:
        items = self.data[key]
        if not isinstance(items, list) or not items:
            raise self.fail(f"{key} must be a non-empty list")
        for index, item in enumerate(items):
            where = f"{self.where}: {key}[{index}]"
            if not isinstance(item, dict):
                raise ValueError(f"{where} must be an object")
            if isinstance(item.get("id"), str):
                where += f" ({item['id']})"
            yield _Document(item, where)


def _parse_json(text: str, origin: str) -> tuple[_Document, str]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"{origin}: duplicate key {key!r}")
            result[key] = value
        return result

    def no_constant(name: str) -> None:
        raise ValueError(f"{origin}: {name} is not allowed")

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{origin}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: the top level must be a JSON object")
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return _Document(data, origin), digest


def _number(doc: _Document, value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.fail(f"limit must be a number, got {value!r}")
    return value


def _parse_rule(doc: _Document) -> Rule:
    doc.keys(_RULE_KEYS, optional=("applies_to",))
    try:
        kind = RuleKind(doc.text("kind"))
    except ValueError:
        raise doc.fail(f"kind {doc.data['kind']!r} must be one of {', '.join(RuleKind)}") from None
    step, op, raw_limit = doc.text("step"), doc.text("op"), doc.data["limit"]
    if step not in STEPS:
        raise doc.fail(f"step {step!r} must be one of {', '.join(STEPS)}")
    if op not in _OPS:
        raise doc.fail(f"op {op!r} must be one of {', '.join(sorted(_OPS))}")
    limit: Limit
    if op == "between":
        if not isinstance(raw_limit, list) or len(raw_limit) != 2:
            raise doc.fail(f"limit of a between rule must be [lo, hi], got {raw_limit!r}")
        low, high = _number(doc, raw_limit[0]), _number(doc, raw_limit[1])
        if not low < high:
            raise doc.fail(f"limit [{low}, {high}] must have lo < hi")
        limit = (low, high)
    else:
        limit = _number(doc, raw_limit)
    applies_to: dict[str, object] = {}
    conditions = doc.data.get("applies_to", {})
    if not isinstance(conditions, dict):
        raise doc.fail(f"applies_to must be an object, got {conditions!r}")
    for key, value in conditions.items():
        accepted = value if isinstance(value, list) else [value]
        if not (
            _IDENT.fullmatch(key)
            and accepted
            and (isinstance(value, bool) or all(isinstance(v, str) for v in accepted))
        ):
            raise doc.fail(f"applies_to {key} must be true, false, a string or a list of strings")
        allowed = CONTEXT_VALUES.get(key)
        if allowed is not None and not set(accepted) <= allowed:
            raise doc.fail(f"applies_to {key}={value!r}; expected values from {sorted(allowed)}")
        applies_to[key] = tuple(value) if isinstance(value, list) else value
    return Rule(
        id=doc.text("id", _RULE_ID),
        kind=kind,
        step=step,
        field=doc.text("field", _IDENT),
        op=op,
        limit=limit,
        unit=doc.text("unit"),
        applies_to=MappingProxyType(applies_to),
        message_zh=doc.text("message_zh"),
        message_en=doc.text("message_en"),
        clause=doc.text("clause"),
    )


def _notes(doc: _Document) -> None:
    notes = doc.data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise doc.fail("notes must be a list of strings")


def _rule_set_from_text(text: str, origin: str) -> RuleSet:
    doc, digest = _parse_json(text, origin)
    doc.keys(("rule_set_id", "version", "effective_from", "source", "rules"), ("notes",))
    _notes(doc)
    rules = tuple(_parse_rule(child) for child in doc.children("rules"))
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise doc.fail(f"duplicate rule id {rule.id}")
        seen.add(rule.id)
    return RuleSet(
        rule_set_id=doc.text("rule_set_id", _NAME),
        version=doc.text("version", _VERSION),
        rules=rules,
        effective_from=doc.day("effective_from"),
        source=doc.text("source"),
        digest=digest,
    )


def load_rule_set_file(path: Path) -> RuleSet:
    """Load and strictly validate a rule-set file; raises ValueError naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read rule set: {exc}") from None
    return _rule_set_from_text(text, str(path))


def _packaged(name: str, version: str) -> tuple[Traversable, str]:
    if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
        raise ValueError(f"bad rule set name {name!r} or version {version!r}")
    filename = f"{name}.v{version}.json"
    resource = resources.files("ledger").joinpath("rulesets", filename)
    if not resource.is_file():
        raise ValueError(f"no packaged rule set {name}@{version} (rulesets/{filename})")
    return resource, f"rulesets/{filename}"


def load_rule_set(name: str = "gb18467-2011", version: str = "1") -> RuleSet:
    """Load a packaged rule set. The content of a published `name@version` never changes."""
    resource, origin = _packaged(name, version)
    rule_set = _rule_set_from_text(resource.read_text(encoding="utf-8"), origin)
    if (rule_set.rule_set_id, rule_set.version) != (name, version):
        raise ValueError(f"{origin}: file declares {rule_set.ref}, expected {name}@{version}")
    return rule_set


def load_rule_set_ref(ref: str) -> RuleSet:
    """Load the packaged rule set named by a stored reference such as "gb18467-2011@1"."""
    name, sep, version = ref.partition("@")
    if not sep:
        raise ValueError(f"rule set reference {ref!r} must look like name@version")
    return load_rule_set(name, version)


def _packaged_refs(top_key: str) -> list[str]:
    refs = []
    for entry in resources.files("ledger").joinpath("rulesets").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match and top_key in json.loads(entry.read_text(encoding="utf-8")):
            refs.append(f"{match['name']}@{match['version']}")
    return sorted(refs)


def available_rule_sets() -> list[str]:
    """References of the packaged rule sets, e.g. ["gb18467-2011@1"]."""
    return _packaged_refs("rule_set_id")
