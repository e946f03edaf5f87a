"""Comparison of two statistics files or runs (docs/conventions.md#comparison, statistics part).

Examples
--------
>>> base = [{"phase": "train", "batch": 0, "mean": 0.5, "std": 0.1, "var_zero_mean": 0.01,
...          "var_across_group": None, "intensity_scale": 9.8, "n_patches": 4}]
>>> cand = [{"phase": "inference", "batch": 0, "mean": 0.0, "std": 0.0, "var_zero_mean": 0.0,
...          "var_across_group": None, "intensity_scale": 9.8, "n_patches": 4}]
>>> report = compare_stats(base, cand)
>>> report["figures"]["mean"]["status"], report["figures"]["var_across_group"]["status"]
('candidate_zero', 'missing')
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.physics.stats import FIGURES, summarise

CANVAS_FIGURES = ("mean", "std", "min", "max", "coverage")
STATUSES = ("ok", "baseline_zero", "candidate_zero", "both_zero", "missing", "nan")


def load_stats(source: str | os.PathLike[str] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records from a stats JSON file (a list of records, or ``{"records": [...]}``), a run
    directory (its ``analysis/stats_*.json``), or an in-memory list."""
    if isinstance(source, list):
        return source
    path = Path(source)
    if path.is_dir():
        found = sorted(path.glob("analysis/stats_*.json")) or sorted(path.glob("stats_*.json"))
        if not found:
            raise InputError(str(path), "a stats JSON file or a run directory with "
                             "analysis/stats_*.json", "none found")
        path = found[-1]
    if not path.is_file():
        raise InputError(str(path), "an existing stats JSON file", "no such file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(str(path), "valid JSON", f"{exc.msg} at line {exc.lineno}") from None
    if isinstance(data, dict) and "records" in data:
        data = data["records"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError(str(path),
                         "a JSON list of statistics records (docs/conventions.md#statistics)")
    if not data:
        raise InputError(str(path), "at least one statistics record", "an empty list")
    return data


def compare_figure(baseline: Any, candidate: Any, tol: float = 0.0) -> dict[str, Any]:
    """Baseline, candidate, ratio, delta and status of one figure."""
    out: dict[str, Any] = {"baseline": baseline, "candidate": candidate, "ratio": None,
                           "delta": None}
    if baseline is None or candidate is None:
        out["status"] = "missing"
        return out
    b, c = float(baseline), float(candidate)
    if math.isnan(b) or math.isnan(c):
        out["status"] = "nan"
        return out
    out["delta"] = c - b
    bz, cz = abs(b) <= tol, abs(c) <= tol
    if bz and cz:
        out["status"] = "both_zero"
    elif bz:
        out["status"] = "baseline_zero"
    elif cz:
        out["status"] = "candidate_zero"
        out["ratio"] = c / b
    else:
        out["status"] = "ok"
        out["ratio"] = c / b
    return out


def compare_stats(baseline: Any, candidate: Any, tol: float = 0.0) -> dict[str, Any]:
    """Compare two stats sources (see :func:`load_stats`) figure by figure.

    Each figure gets ``baseline``, ``candidate``, ``ratio`` (candidate / baseline),
    ``delta`` (candidate − baseline) and a ``status`` among :data:`STATUSES`; ``tol`` is the
    magnitude at or below which a figure counts as zero.
    """
    base, cand = summarise(load_stats(baseline)), summarise(load_stats(candidate))
    figures = {k: compare_figure(base.get(k), cand.get(k), tol) for k in FIGURES}
    bc, cc = base.get("canvas"), cand.get("canvas")
    if bc is not None or cc is not None:
        for k in CANVAS_FIGURES:
            figures[f"canvas.{k}"] = compare_figure((bc or {}).get(k), (cc or {}).get(k), tol)
    return {
        "baseline": {k: base.get(k) for k in ("phase", "gridsize", "C", "backend", "device",
                                              "n_patches")},
        "candidate": {k: cand.get(k) for k in ("phase", "gridsize", "C", "backend", "device",
                                               "n_patches")},
        "figures": figures,
    }


def format_report(report: dict[str, Any]) -> str:
    """A fixed-width table of a :func:`compare_stats` report."""
    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.6g}"

    header = f"{'figure':<18} {'baseline':>12} {'candidate':>12} {'ratio':>10} {'delta':>12}"
    lines = [header + "  status"]
    for name, f in report["figures"].items():
        lines.append(f"{name:<18} {fmt(f['baseline']):>12} {fmt(f['candidate']):>12} "
                     f"{fmt(f['ratio']):>10} {fmt(f['delta']):>12}  {f['status']}")
    return "\n".join(lines)
