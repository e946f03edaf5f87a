"""``ptycho compare``: two stats files / runs figure by figure, or two canvases
(docs/conventions.md#comparison)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.evaluate_cmd import format_table, warn_registration
from engine.evaluation.compare import (
    DEFAULT_RTOL,
    DIRECTORY_ORDER,
    STATUSES,
    failing,
    format_report,
    parse_statuses,
)

EXIT_FAIL_ON = 1

DESCRIPTION = f"""\
Compare two statistics sources figure by figure, or two canvases.

Statistics sources: stats_train.json, stats_inference.json (train/infer --log-patch-stats),
the output of `ptycho stats`, the debug dump's stats.json, or a directory; a directory
stands for the first of {', '.join(DIRECTORY_ORDER)} found in it (the table's first lines
say which file was read; name the file to pick another).

Statuses: ok (within --rtol of the baseline), differs, baseline_zero, candidate_zero,
both_zero (|value| <= --zero-tol), missing (a side lacks the figure), undefined
(var_across_group at gridsize 1), nan. The verdict line is DIFFERS when any figure is
differs, baseline_zero, candidate_zero or nan.

Two canvas .npz files: registered, global phase aligned and amplitude scaled (as
`ptycho evaluate` does; the scale is reported), then MAE, RMSE, PSNR, SSIM, FRC.

Exit status: 0, or {EXIT_FAIL_ON} when a figure's status is one of --fail-on; 2 on bad input.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two stats files, run directories or canvases",
                       description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("baseline", help="stats JSON, run/debug directory, or canvas .npz")
    p.add_argument("candidate", help="stats JSON, run/debug directory, or canvas .npz")
    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                   help=f"relative tolerance of status ok: |candidate/baseline - 1| <= rtol "
                        f"(default {DEFAULT_RTOL})")
    p.add_argument("--zero-tol", type=float, default=0.0,
                   help="|figure| <= tol counts as zero (default 0)")
    p.add_argument("--fail-on", default=None, metavar="STATUS[,STATUS...]",
                   help=f"exit with status {EXIT_FAIL_ON} when any figure has one of these "
                        f"statuses ({', '.join(STATUSES)}), e.g. differs,candidate_zero,nan")
    p.add_argument("--out", default=None, help="full report JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine import api
    from engine.atomic import write_json
    from engine.evaluation.metrics import to_jsonable

    fail_on = parse_statuses(args.fail_on) if args.fail_on is not None else ()
    if Path(args.baseline).suffix == ".npz" or Path(args.candidate).suffix == ".npz":
        # canvases: MAE, PSNR, SSIM, FRC after registration, global phase alignment and
        # amplitude scaling
        report = to_jsonable(api.compare(api.load_canvas(args.baseline),
                                         api.load_canvas(args.candidate)))
        print(format_table(report))
        amp = report.get("amplitude") or {}
        print(f"amplitude scale {amp.get('scale', float('nan')):.4g} (candidate x scale "
              f"matches the baseline's mean); overlap {report['overlap_fraction']:.1%} of the "
              f"baseline")
        if args.fail_on is not None:
            print("ptycho compare: --fail-on applies to statistics, not canvases",
                  file=sys.stderr)
        if args.out:
            write_json(args.out, report)
            print(f"wrote {args.out}")
        warn_registration(report, "compare")
        return 0
    report = api.compare(args.baseline, args.candidate, rtol=args.rtol, zero_tol=args.zero_tol)
    print(format_report(report))
    if args.out:
        write_json(args.out, to_jsonable(report))
        print(f"wrote {args.out}")
    bad = failing(report, fail_on)
    if bad:
        print(f"ptycho compare: {len(bad)} figure(s) with a --fail-on status: "
              + ", ".join(f"{k} ({report['figures'][k]['status']})" for k in bad),
              file=sys.stderr)
        return EXIT_FAIL_ON
    return 0
