"""Benchmark the video warm start of a trained IFR video model.

Runs the model's test clips cold (every frame from zero), warm to the
tolerance and warm with each ``--budgets`` value, beside the stock model of
the pair, interleaved clip by clip (one thread), and writes ``<out>.json`` and
``<out>.md``: per setting the solver steps per solved sample, the whole-model
ms per frame (and its ratio to the stock model and to the cold start) and the
VIS AP (AP, AP50, AP75, AR1, AR10).

Example (the video demo pair, trained from the image demo models)::

    python tools/analysis_tools/benchmark_video_warm_start.py \\
        --config configs/ifr/demo/masktrack-rcnn_mbv2_fpn_shapes-video-from-image_ifr.py \\
        --checkpoint work_dirs/video/ifr/iter_450.pth \\
        --stock-config \\
        configs/ifr/demo/masktrack-rcnn_mbv2_fpn_shapes-video-from-image_baseline.py \\
        --stock-checkpoint work_dirs/video/baseline/iter_450.pth \\
        --out docs/results/video_warm_start
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.benchmark.timing import machine  # noqa: E402
from tools.lib.benchmark.video_warm_start import (match_calibration,  # noqa: E402
                                                  run_warm_start, warm_start_markdown)
from tools.lib.models import resolve_path  # noqa: E402
from tools.lib.outputs import write_results  # noqa: E402
from tools.lib.progress import log, quiet_mmengine  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', required=True, help='the IFR video model')
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--stock-config', required=True, help='the stock model of the pair')
    parser.add_argument('--stock-checkpoint', required=True)
    parser.add_argument('--budgets', type=int, nargs='+', default=[1, 2, 3],
                        help='block evaluations per warm-started solve')
    parser.add_argument('--match-thr', default=None,
                        help="warm_start.match_thr of the warm settings: a number, 'suggested' "
                        '(the one the calibration on training clips suggests) or, by default, '
                        "the model's")
    parser.add_argument('--num-videos', type=int, default=None,
                        help='the first N test clips only')
    parser.add_argument('--calibration-videos', type=int, default=10,
                        help='training clips on which the match distances are measured '
                        '(0: skip)')
    parser.add_argument('--out', default='work_dirs/benchmarks/video_warm_start',
                        help='output stem (.json, .md)')
    parser.add_argument('--threads', type=int, default=1, help='intra-op threads')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='key=value overrides of both configs (e.g. the data root)')
    args = parser.parse_args(argv)
    bad = [k for k in args.budgets if k < 1]
    if bad:
        parser.error(f'--budgets must be positive, got {bad}')
    if args.num_videos is not None and args.num_videos < 1:
        parser.error(f'--num-videos must be positive, got {args.num_videos}')
    if args.calibration_videos < 0:
        parser.error(f'--calibration-videos must be 0 or more, got {args.calibration_videos}')
    if args.match_thr not in (None, 'suggested'):
        try:
            args.match_thr = float(args.match_thr)
        except ValueError:
            args.match_thr = -1.0
        if not args.match_thr > 0:
            parser.error("--match-thr must be a positive number or 'suggested'")
    if args.match_thr == 'suggested' and not args.calibration_videos:
        parser.error("--match-thr suggested needs the calibration (--calibration-videos > 0)")
    for key in ('checkpoint', 'stock_checkpoint'):
        path = getattr(args, key)
        if not osp.isfile(resolve_path(path)):
            parser.error(f"--{key.replace('_', '-')} {path} does not exist")
    return args


def main(argv=None):
    args = parse_args(argv)
    quiet_mmengine()
    torch.set_num_threads(args.threads)
    calibration = None
    if args.calibration_videos:
        calibration = match_calibration(args.config, resolve_path(args.checkpoint), 'train',
                                        args.calibration_videos, args.cfg_options)
    match_thr = args.match_thr
    if match_thr == 'suggested':
        match_thr = calibration['suggested_match_thr']
        if match_thr is None:
            raise SystemExit('the calibration suggests no match_thr: no threshold keeps '
                             'previous equilibria nearer than the zero start')
        log(f'match_thr {match_thr} (suggested by the calibration on training clips)')
    report = run_warm_start(args.config, resolve_path(args.checkpoint), args.stock_config,
                            resolve_path(args.stock_checkpoint), args.budgets, args.num_videos,
                            match_thr, args.cfg_options)
    # The paths as given, not this machine's absolute ones.
    report.update(checkpoint=args.checkpoint, stock_checkpoint=args.stock_checkpoint)
    if calibration:
        report['match_calibration'] = calibration
    report['machine'] = machine()
    markdown = warm_start_markdown(report, report['machine'])
    write_results(args.out, report, markdown)
    print(markdown)
    log(f'wrote {args.out}.json and {args.out}.md')


if __name__ == '__main__':
    main()
