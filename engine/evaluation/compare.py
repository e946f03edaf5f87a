"""Comparison of two statistics files or runs (docs/conventions.md#comparison, statistics part).

Every statistics file the tool writes is read: ``stats_train.json`` and
``stats_inference.json`` (training and inference with ``log_patch_stats``), the output of
``ptycho stats``, the debug dump's ``stats.json``, and a run, inference or debug directory
(see :func:`find_stats_file` for which file inside it is taken).

Each figure gets a status (:data:`STATUSES`):

``ok``
    both finite and nonzero, and the candidate within ``rtol`` of the baseline
    (``|candidate / baseline − 1| <= rtol``);
``differs``
    both finite and nonzero, but further apart than ``rtol``;
``baseline_zero`` / ``candidate_zero`` / ``both_zero``
    ``|value| <= zero_tol`` on one or both sides (a collapsed output is the usual cause);
``missing``
    a side lacks the figure (e.g. no canvas statistics in the file);
``undefined``
    the figure does not exist for that run: ``var_across_group`` at gridsize 1 (C = 1);
``nan``
    a side's value is NaN.

Examples
--------
>>> base = [{"phase": "train", "batch": 0, "C": 1, "mean": 0.5, "std": 0.1,
...          "var_zero_mean": 0.01, "var_across_group": None, "intensity_scale": 9.8,
...          "n_patches": 4}]
>>> cand = [{**base[0], "phase": "inference", "mean": 0.0, "std": 0.1001}]
>>> report = compare_stats(base, cand)
>>> [report["figures"][k]["status"] for k in ("mean", "std", "var_across_group")]
['candidate_zero', 'ok', 'undefined']
>>> report["verdict"]["status"]
'differs'
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.evaluation.legacy_stats import LEGACY_FILES, NATIVE, translate
from engine.physics.stats import FIGURES, summarise

CANVAS_FIGURES = ("mean", "std", "min", "max", "coverage")
STATUSES = ("ok", "differs", "baseline_zero", "candidate_zero", "both_zero", "missing",
            "undefined", "nan")
# statuses that make the overall verdict "differs"; missing and undefined figures are
# reported but cannot be compared, so they do not decide it
PROBLEM_STATUSES = ("differs", "baseline_zero", "candidate_zero", "nan")
DEFAULT_RTOL = 0.05

# which statistics file a directory stands for, first match wins: a debug dump directory,
# then an inference's (its whole-set record over every group), then a training run's
DIRECTORY_ORDER = ("stats.json", "analysis/stats_inference.json", "analysis/stats_train.json",
                   "stats_inference.json", "stats_train.json", "debug/stats.json",
                   *LEGACY_FILES)


def find_stats_file(directory: str | os.PathLike[str]) -> Path:
    """The statistics file a directory stands for.

    The first of :data:`DIRECTORY_ORDER` that exists (a debug dump's ``stats.json``, an
    inference's ``analysis/stats_inference.json``, a training run's
    ``analysis/stats_train.json``, ...), else the last of any other ``analysis/stats_*.json``
    or ``stats_*.json`` in sorted order. Name the file itself to pick another.
    """
    d = Path(directory)
    for name in DIRECTORY_ORDER:
        if (d / name).is_file():
            return d / name
    found = sorted(d.glob("analysis/stats_*.json")) or sorted(d.glob("stats_*.json"))
    if not found:
        raise InputError(str(d), "a statistics file or a run, inference or debug directory "
                         "holding one (stats.json, analysis/stats_*.json)", "none found")
    return found[-1]


def _from_debug_dump(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The debug dump's ``{"patches": {...}, "canvas": {...}}`` as one whole-set record."""
    patches = data.get("patches")
    if not isinstance(patches, dict):
        raise InputError("debug stats.json", "a 'patches' object", type(patches).__name__)
    record = {"phase": data.get("phase", "inference"), "batch": "all", **patches}
    if isinstance(data.get("canvas"), dict):
        record["canvas"] = data["canvas"]
    return [record]


def load_stats_named(source: Any) -> tuple[list[dict[str, Any]], str]:
    """:func:`load_stats` and the naming the file used (this project's, or the original
    PtychoPINN tools' ``global_mean``/``batch_idx``..., see
    :mod:`engine.evaluation.legacy_stats`)."""
    records, _, naming = _load_named(source)
    return records, naming


def load_stats(source: str | os.PathLike[str] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records of a statistics source.

    ``source`` is a JSON file holding a list of records (``stats_*.json``), ``{"records":
    [...]}``, or the debug dump's ``{"patches", "canvas"}``; a directory (see
    :func:`find_stats_file`); or an in-memory list of records.
    """
    return _load(source)[0]


def _load(source: Any) -> tuple[list[dict[str, Any]], str | None]:
    records, path, _ = _load_named(source)
    return records, path


def _load_named(source: Any) -> tuple[list[dict[str, Any]], str | None, str]:
    if isinstance(source, list):
        records, naming = translate(source)
        return records, None, naming
    path = Path(source)
    if path.is_dir():
        path = find_stats_file(path)
    if not path.is_file():
        raise InputError(str(path), "an existing stats JSON file", "no such file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        got = (f"{exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError)
               else "binary data")
        raise InputError(str(path), "valid JSON", got) from None
    data, naming = translate(data)  # the original tools' key names, renamed
    if isinstance(data, dict) and "records" in data:
        data = data["records"]
    elif isinstance(data, dict) and "patches" in data:
        data = _from_debug_dump(data)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError(str(path),
                         "a JSON list of statistics records (docs/conventions.md#statistics)")
    if not data:
        raise InputError(str(path), "at least one statistics record", "an empty list")
    return data, str(path), naming


def compare_figure(baseline: Any, candidate: Any, tol: float = 0.0,
                   rtol: float = DEFAULT_RTOL) -> dict[str, Any]:
    """Baseline, candidate, ratio, delta and status of one figure.

    ``tol``: the magnitude at or below which a value counts as zero; ``rtol``: the
    relative difference (to the baseline) up to which two values are ``ok``.

    >>> compare_figure(1.0, 1.9)["status"], compare_figure(1.0, 1.04)["status"]
    ('differs', 'ok')
    """
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
    else:
        out["ratio"] = c / b
        if cz:
            out["status"] = "candidate_zero"
        else:
            out["status"] = "ok" if abs(c / b - 1.0) <= rtol else "differs"
    return out


def _undefined(summary: dict[str, Any], key: str) -> bool:
    """A figure that does not exist for this run (not one the file failed to carry)."""
    if key != "var_across_group" or summary.get(key) is not None:
        return False
    C = summary.get("C")
    if C is None and summary.get("gridsize") is not None:
        C = int(summary["gridsize"]) ** 2
    return C == 1


def verdict(figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"status": "ok" | "differs", "counts": {status: n}, "problems": [figure names]}``:
    ``differs`` when any figure's status is in :data:`PROBLEM_STATUSES`."""
    counts = {s: 0 for s in STATUSES}
    for f in figures.values():
        counts[f["status"]] += 1
    problems = [k for k, f in figures.items() if f["status"] in PROBLEM_STATUSES]
    return {"status": "differs" if problems else "ok",
            "counts": {s: n for s, n in counts.items() if n}, "problems": problems}


def parse_statuses(text: str) -> tuple[str, ...]:
    """A comma-separated list of statuses (``"differs,candidate_zero"``), checked."""
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in STATUSES]
    if bad or not names:
        raise InputError("fail_on", f"a comma-separated list of {', '.join(STATUSES)}",
                         repr(text))
    return names


def failing(report: dict[str, Any], fail_on: tuple[str, ...] | list[str]) -> list[str]:
    """The figures whose status is among ``fail_on``."""
    return [k for k, f in report["figures"].items() if f["status"] in fail_on]


def compare_stats(baseline: Any, candidate: Any, tol: float = 0.0,
                  rtol: float = DEFAULT_RTOL) -> dict[str, Any]:
    """Compare two stats sources (see :func:`load_stats`) figure by figure.

    Each figure gets ``baseline``, ``candidate``, ``ratio`` (candidate / baseline),
    ``delta`` (candidate − baseline) and a ``status`` among :data:`STATUSES`; ``tol`` is the
    magnitude at or below which a figure counts as zero, ``rtol`` the relative difference up
    to which two figures agree. ``canvas.*`` figures compare the stitched canvases'
    statistics (mean, std, min, max over covered pixels, coverage fraction). ``verdict``
    sums it up (see :func:`verdict`); ``baseline``/``candidate`` say which file was read.
    """
    if not (isinstance(tol, int | float) and tol >= 0):
        raise InputError("zero_tol", "a magnitude >= 0", str(tol))
    if not (isinstance(rtol, int | float) and rtol >= 0):
        raise InputError("rtol", "a relative tolerance >= 0", str(rtol))
    (brecs, bfile, bname), (crecs, cfile, cname) = _load_named(baseline), _load_named(candidate)
    base, cand = summarise(brecs), summarise(crecs)
    figures = {}
    for k in FIGURES:
        f = compare_figure(base.get(k), cand.get(k), tol, rtol)
        if f["status"] == "missing" and (_undefined(base, k) or _undefined(cand, k)):
            f["status"] = "undefined"
        figures[k] = f
    bc, cc = base.get("canvas"), cand.get("canvas")
    if bc is not None or cc is not None:
        for k in CANVAS_FIGURES:
            figures[f"canvas.{k}"] = compare_figure((bc or {}).get(k), (cc or {}).get(k), tol,
                                                    rtol)
    keys = ("phase", "gridsize", "C", "backend", "device", "n_patches")
    return {
        "baseline": {"file": bfile, "naming": bname, **{k: base.get(k) for k in keys}},
        "candidate": {"file": cfile, "naming": cname, **{k: cand.get(k) for k in keys}},
        "rtol": rtol, "zero_tol": tol,
        "figures": figures,
        "verdict": verdict(figures),
    }


def format_report(report: dict[str, Any]) -> str:
    """A fixed-width table of a :func:`compare_stats` report and its verdict line."""
    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.6g}"

    lines = []
    for side in ("baseline", "candidate"):
        info = report.get(side, {})
        if info.get("file"):
            lines.append(f"{side}: {info['file']} ({info.get('phase') or '?'}, "
                         f"C = {info.get('C') if info.get('C') is not None else '?'})")
        if info.get("naming") and info["naming"] != NATIVE:
            lines.append(f"{side}: read with the {info['naming']} naming")
    header = f"{'figure':<18} {'baseline':>12} {'candidate':>12} {'ratio':>10} {'delta':>12}"
    lines.append(header + "  status")
    for name, f in report["figures"].items():
        lines.append(f"{name:<18} {fmt(f['baseline']):>12} {fmt(f['candidate']):>12} "
                     f"{fmt(f['ratio']):>10} {fmt(f['delta']):>12}  {f['status']}")
    v = report.get("verdict") or verdict(report["figures"])
    counts = ", ".join(f"{n} {s}" for s, n in v["counts"].items())
    rtol = report.get("rtol", DEFAULT_RTOL)
    line = f"verdict: {v['status'].upper()} at rtol {rtol:g} ({counts})"
    if v["problems"]:
        line += ": " + ", ".join(v["problems"])
    lines.append(line)
    return "\n".join(lines)
