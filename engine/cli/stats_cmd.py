"""``ptycho stats``: statistics JSON (docs/conventions.md#statistics) (and patch-grid PNGs) of a
source."""

from __future__ import annotations

import argparse

from engine.cli.common import add_source_args, grouping_from, stitch_config_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="patch and canvas statistics (docs/conventions.md#statistics)")
    add_source_args(p)
    p.add_argument("--phase", default="truth", help="phase label of the records")
    p.add_argument("--limit", type=int, default=None, help="record only the first K batches")
    p.add_argument("--out", required=True, help="output stats .json")
    p.add_argument("--grid-png", default=None,
                   help="patch grid PNG (raw; a _normalized twin is written beside it)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine import api
    from engine.atomic import write_json
    from engine.cli.progress import ProgressBar, stats_line
    from engine.events import Event

    ds = api.load_dataset(args.data, require_diffraction=False)
    bar = ProgressBar()

    def on_event(event: Event) -> None:
        bar(event)
        if (line := stats_line(event)) is not None:
            bar.close()
            print(line)

    log = api.patch_stats(ds, grouping_from(args), stitch_options=stitch_config_from(args),
                          source=args.source, batch_size=args.batch_size, phase=args.phase,
                          limit=args.limit, backend=args.backend, device=args.device,
                          emit=on_event)
    bar.close()
    write_json(args.out, log.records)
    if args.grid_png:
        log.write_grid(args.grid_png)
    whole = log.records[-1]
    vag = whole["var_across_group"]
    print(f"wrote {args.out}: {whole['n_patches']} patches, mean {whole['mean']:.4g}, "
          f"var_zero_mean {whole['var_zero_mean']:.4g}, var_across_group "
          f"{'null' if vag is None else f'{vag:.4g}'}")
    return 0

