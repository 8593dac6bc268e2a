"""Every bench that ``make bench`` runs ends with one JSON line per metric (issue 12):
``{"metric", "ours", "anchor", "ratio"}``, the anchor measured in the same run."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.common import metric_line, slug

ROOT = Path(__file__).resolve().parents[2]


def test_a_metric_line_is_one_json_object_with_the_ratio_of_ours_to_the_anchor() -> None:
    line = metric_line("forms_signed_per_s_1core", 6.5, 26.0, goal=0.8)
    assert "\n" not in line
    document = json.loads(line)
    assert document == {
        "metric": "forms_signed_per_s_1core",
        "ours": 6.5,
        "anchor": 26.0,
        "ratio": 0.25,
        "goal": 0.8,
    }


def test_a_zero_anchor_gives_no_ratio_rather_than_a_crash() -> None:
    assert json.loads(metric_line("m", 1.0, 0.0))["ratio"] is None


def test_slug_makes_a_metric_name_part() -> None:
    assert slug("all five read models") == "all_five_read_models"
    assert slug("TSA requests (per 10,000 events)") == "tsa_requests_per_10_000_events"


def test_every_bench_that_make_bench_runs_prints_metric_lines() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    modules = re.findall(r"-m bench\.(\w+)", target)
    assert {"append", "timestamps", "rebuild", "verify", "forms", "archive"} <= set(modules)
    for module in modules:
        source = (ROOT / "bench" / f"{module}.py").read_text(encoding="utf-8")
        assert "metric_line(" in source, f"bench/{module}.py prints no JSON metric line"
