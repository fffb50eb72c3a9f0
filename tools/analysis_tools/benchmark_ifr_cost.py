"""What IFR costs against mmdet's stock 4-conv mask head, and what each lever buys.

One run measures every side on the same machine, interleaved, and writes the
ratios IFR / stock (JSON + markdown, ``work_dirs/benchmarks/ifr_cost.*`` by
default). Three sections (``--sections``):

``head``
    The mask head alone (RoI features ``N x 256 x 14 x 14`` in, mask logits
    out): mmdet's ``FCNMaskHead`` against ``IFRConvFCMaskHead`` with the
    solver settings of each *lever* row. Measured per row:

    * inference latency (eval mode, ``torch.no_grad``) on ``--num-rois`` RoIs;
    * training step (forward + mmdet's mask loss + backward) on
      ``--train-rois`` RoIs;
    * training peak memory: each row runs in a fresh subprocess one warm-up
      step, then the kernel's peak-RSS counter (``VmHWM``) is reset and one
      more step is run; reported is that step's peak RSS minus the RSS
      before it (inputs and weights excluded, parameter gradients, autograd
      graph, solver state, temporaries and allocator slack included). Large
      tensors are ``mmap``-ed (``MALLOC_MMAP_THRESHOLD_``) so freed memory
      leaves the RSS at once;
    * solver steps actually taken (forward and adjoint, mean per RoI).

    RoI features are random (``N(0, 1)``) and weights freshly initialised,
    unless ``--head-checkpoint`` names a trained IFR model: its mask head
    weights are used and its RoI features are extracted from real images
    (``--head-images``, ground-truth boxes, jittered to reach ``N`` RoIs).
    The row ``IFR (as released)`` runs the solver code this project started
    from (kept as ``broyden_v0`` in ``tools/lib/benchmark/released_solver.py``:
    six passes over the history per step, zero-filled history, state copied
    on compaction).

``e2e``
    Whole Mask R-CNNs (``--e2e-models``): ``r50`` is mmdet's
    ``mask-rcnn_r50_fpn_1x_coco.py`` (``backbone.init_cfg=None``) against
    ``configs/ifr/mask_rcnn_r50_ifr_1x.py`` on the fruits & nuts photos;
    ``mbv2`` is the CPU demo's pair of configs on ``data/shapes``. Both sides
    share every weight outside the mask head (copied), hence the same
    proposals and detections. Inference is forced to a realistic number of
    detections (``score_thr=0``, ``max_per_img=--e2e-dets``): a randomly
    initialised detector otherwise keeps almost none and the mask head would
    cost nothing. Measured: latency per image (whole ``predict``, and the part
    spent in the mask head), training-step time (forward + losses + backward,
    batch of ``--e2e-train-batch`` images), positive RoIs per step (what the
    mask head trains on), solver steps.

``accuracy``
    Paper Table 7 redone on a trained IFR model (``--config/--checkpoint``):
    mask AP on its test set for each inference solver setting
    (``--max-iters`` at tol ``1e-3``, ``--tols`` at ``max_iter=15``, both
    ``output`` modes, and the project's default ``test_solver``; each
    setting overrides the training solve), with the
    measured time per image. The backbone, RPN and box head run once per image
    (the mask branch does not change them); the mask branch then runs once per
    setting through the refiner's ``test_overrides``, each into its own
    ``CocoMetric``. ``--baseline-config/--baseline-checkpoint`` add the stock
    model's row.

Every timing is the median of ``--repeats`` runs after a warm-up run, with
``--threads`` intra-op threads (1 by default: steadier on a shared CPU).

Examples::

    # head rows + both whole models, random weights
    python tools/analysis_tools/benchmark_ifr_cost.py --sections head e2e
    # accuracy against cost on the demo's trained IFR model
    python tools/analysis_tools/benchmark_ifr_cost.py --sections accuracy \\
        --config configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py \\
        --checkpoint work_dirs/demo/mask_rcnn_mbv2_shapes/ifr/iter_450.pth

The measurements live in :mod:`tools.lib.benchmark` (one module per
section); this script is their command line.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.benchmark import (head_memory_worker, machine, run_accuracy,  # noqa: E402
                                 run_e2e, run_head, target_rows, write_report)
from tools.lib.progress import log, quiet_mmengine  # noqa: E402

SECTIONS = ('head', 'e2e', 'accuracy')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--sections', nargs='+', choices=SECTIONS, default=['head', 'e2e'])
    parser.add_argument('--out-dir', default='work_dirs/benchmarks')
    parser.add_argument('--name', default='ifr_cost', help='output file stem')
    parser.add_argument('--threads', type=int, default=1, help='intra-op threads')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs after a warm-up')
    parser.add_argument('--seed', type=int, default=0)
    # head
    parser.add_argument('--num-rois', type=int, default=100, help='RoIs, head inference')
    parser.add_argument('--train-rois', type=int, default=128, help='RoIs, head training')
    parser.add_argument('--channels', type=int, default=256)
    parser.add_argument('--roi-size', type=int, default=14)
    parser.add_argument('--num-classes', type=int, default=80, help='mask head classes')
    parser.add_argument(
        '--head-rows', nargs='+', default=None, help='subset of the head rows (by key)')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory subprocesses')
    parser.add_argument('--head-config', help='config of a trained IFR model (head section)')
    parser.add_argument('--head-checkpoint', help='its checkpoint: trained weights, real RoIs')
    parser.add_argument('--head-images', type=int, default=8,
                        help='test images whose GT boxes give the real RoIs')
    # e2e
    parser.add_argument('--e2e-models', nargs='*', default=['r50', 'mbv2'],
                        choices=('r50', 'mbv2'))
    parser.add_argument('--e2e-custom', nargs=2, metavar=('BASELINE_CFG', 'IFR_CFG'),
                        help='an extra whole-model pair, on its configs\' own data')
    parser.add_argument('--e2e-images', type=int, default=3, help='images timed at inference')
    parser.add_argument('--e2e-dets', type=int, default=100,
                        help='detections per image forced (0: the config\'s own test_cfg)')
    parser.add_argument('--e2e-train-batch', type=int, default=2)
    parser.add_argument('--fruits-root', default='/work/shared/data/fruits_nuts')
    parser.add_argument('--mbv2-checkpoints', nargs=2, metavar=('BASELINE', 'IFR'),
                        help='trained demo checkpoints (default: the demo run\'s, if present)')
    parser.add_argument('--e2e-test-solvers', default=None,
                        help='JSON {label: test_solver}: extra IFR inference rows, e.g. '
                        '\'{"paper": {}}\' (the training solve at test time)')
    parser.add_argument('--e2e-train-solvers', default=None,
                        help='JSON {label: solver options}: extra IFR training rows whose solve '
                        'replaces the config\'s, e.g. \'{"jfb": {"grad": "phantom"}}\'')
    parser.add_argument('--e2e-refiner-from', metavar='CHECKPOINT',
                        help='a trained IFR checkpoint (e.g. the demo\'s) whose mask-head '
                        'refiner weights replace the random ones of randomly initialised '
                        'models: the solver then takes the steps of a trained block')
    parser.add_argument('--e2e-unroll-row', action='store_true',
                        help='also time IFR training in the unrolled warm-up phase')
    # accuracy
    parser.add_argument('--config', help='IFR config (accuracy)')
    parser.add_argument(
        '--checkpoint', nargs='+',
        help='IFR checkpoint(s) (accuracy); several (e.g. a seed study\'s) give the target '
        'table the mean +- std of the default solve\'s mask AP change')
    parser.add_argument('--baseline-config')
    parser.add_argument('--baseline-checkpoint')
    parser.add_argument('--max-iters', type=int, nargs='+', default=[1, 2, 3, 5, 8, 15])
    parser.add_argument('--tols', type=float, nargs='+', default=[1e-1, 3e-2, 1e-2, 1e-3])
    parser.add_argument('--outputs', nargs='+', default=['z', 'fz'], choices=('z', 'fz'))
    parser.add_argument('--extra-settings', default=None,
                        help='JSON list of further test_solver dicts to evaluate, e.g. '
                        '\'[{"solver": "fixed_point", "max_iter": 3, "output": "fz"}]\'')
    parser.add_argument('--num-eval-images', type=int, default=None,
                        help='evaluate on the first N test images only')
    parser.add_argument('--targets-json', metavar='PATH',
                        help='also write the target table (a list of rows) here, e.g. '
                        'docs/results/ifr_cost.json')
    # internal
    parser.add_argument('--memory-worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if 'accuracy' in args.sections and not (args.config and args.checkpoint):
        parser.error('--sections accuracy needs --config and --checkpoint')
    if bool(args.head_config) != bool(args.head_checkpoint):
        parser.error('--head-config and --head-checkpoint go together')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.memory_worker:
        head_memory_worker(args)
        return
    quiet_mmengine()
    torch.set_num_threads(args.threads)
    report = dict(machine=machine(), repeats=args.repeats, argv=sys.argv[1:] if argv is None
                  else list(argv))
    started = time.time()
    if 'head' in args.sections:
        # Each memory worker is this script again, in a fresh process.
        report['head'] = run_head(args, worker=[sys.executable, osp.abspath(__file__)])
    if 'e2e' in args.sections:
        report['e2e'] = run_e2e(args)
    if 'accuracy' in args.sections:
        sections = [run_accuracy(argparse.Namespace(**{**vars(args), 'checkpoint': ckpt}))
                    for ckpt in args.checkpoint]
        report['accuracy'] = sections[0]
        if len(sections) > 1:
            report['accuracy_seeds'] = sections
    report['targets'] = target_rows(report)
    report['wall_s'] = time.time() - started
    report['load_average_end'] = os.getloadavg()
    table, stem = write_report(report, args.out_dir, args.name)
    print(table)
    log(f'written {stem}.json and {stem}.md')
    if args.targets_json:
        os.makedirs(osp.dirname(osp.abspath(args.targets_json)), exist_ok=True)
        with open(args.targets_json, 'w') as f:
            json.dump(report['targets'], f, indent=2)
        log(f'written {args.targets_json}')


if __name__ == '__main__':
    main()
