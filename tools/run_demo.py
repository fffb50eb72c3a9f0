"""The main job: stock vs IFR Mask R-CNN on the built-in data, end to end.

Steps (each skipped when its output already exists, so a rerun resumes):

1. make the built-in shapes dataset (``tools/dataset_converters``),
2. convert the ImageNet MobileNetV2 backbone (``tools/model_converters``),
3. time a few training iterations of both models and print the expected
   duration on this machine (machines of one kind differ ~3x in speed),
4. train and evaluate both demo configs (seed 0), measure them, print and
   save the table (``tools/benchmark_model_zoo.py`` on
   ``configs/ifr/demo/rows_shapes.yml``),
5. draw both models' predicted masks side by side
   (``tools/analysis_tools/compare_predictions.py``).

Run from the repository root, normally through ``make demo``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import yaml
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmifr  # noqa: F401  (registers the IFR modules for the timing runs)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ROWS = 'configs/ifr/demo/rows_shapes.yml'
ROWS_2X = 'configs/ifr/demo/rows_shapes_2x.yml'
SEED_STUDY = 'docs/ifr_vs_stock_head.md'
#: Evaluating and timing one model on the 50 val images takes about as long as
#: this many training iterations of the stock model.
EVAL_ITERATIONS = 40


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--pretrained', default='work_dirs/pretrained/mobilenetv2_mmdet.pth')
    parser.add_argument('--num-vis', type=int, default=4, help='images drawn side by side')
    parser.add_argument('--retrain', action='store_true',
                        help='train again even if the table exists')
    return parser.parse_args()


def run(step: str, cmd: list) -> None:
    print(f'\n==== [demo] {step}\n$ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def iteration_times(config: str, iters: int, switch_ratio: float = None) -> list:
    """Training time of each of the first ``iters`` iterations of ``config``;
    ``switch_ratio`` moves an IFR model's unrolled-warm-up -> DEQ switch."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.train_cfg.max_iters = iters
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**9, save_last=False)
    cfg.log_level = 'WARNING'
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'IFRUnrollWarmupHook' and switch_ratio is not None:
            hook['switch_ratio'] = switch_ratio
    times = []

    class Timer(Hook):

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.started = time.perf_counter()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            times.append(time.perf_counter() - self.started)

    with tempfile.TemporaryDirectory() as work_dir:
        cfg.work_dir = work_dir
        # mmengine keeps one visualizer per name (mmdet's configs name theirs
        # 'visualizer'); unnamed, it takes the run's own experiment name, so
        # each timing run writes into its own temporary folder.
        cfg.experiment_name = f'timing_{osp.basename(work_dir)}'
        cfg.visualizer.pop('name', None)
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            runner = Runner.from_cfg(cfg)
            runner.register_hook(Timer(), priority='LOWEST')
            runner.train()
        finally:
            os.chdir(cwd)
    return times


def seed_study_command(rows: str, num_seeds: int) -> str:
    """The command that reruns the seed study of ``rows`` behind the docs."""
    seeds = ' '.join(map(str, range(num_seeds)))
    return (f'python tools/benchmark_model_zoo.py --rows {rows} --seeds {seeds} '
            '--work-dir work_dirs/seed_study')


def _median(values: list) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def estimate_duration(row: dict) -> None:
    """Print the expected training + evaluation time of the demo pair."""
    print('\n==== [demo] timing the first training iterations of both models', flush=True)
    # The first iteration of a run pays for lazy initialisation: left out.
    stock = _median(iteration_times(row['baseline']['config'], 4)[1:])
    # One IFR run, switched half-way: iterations 2-4 unrolled, 6-8 DEQ.
    ifr = iteration_times(row['ifr']['config'], 8, switch_ratio=0.5)
    unrolled, deq = _median(ifr[1:4]), _median(ifr[5:])
    cfg = Config.fromfile(osp.join(ROOT, row['ifr']['config']))
    iters = cfg.train_cfg.max_iters
    ratio = next((h['switch_ratio'] for h in cfg.get('custom_hooks', [])
                  if h['type'] == 'IFRUnrollWarmupHook'), 0.0)
    total = (iters * stock + iters * (ratio * unrolled + (1 - ratio) * deq) +
             2 * EVAL_ITERATIONS * stock)
    print(f'[demo] {stock:.2f} s/iteration (stock), {unrolled:.2f} (IFR, unrolled warm-up), '
          f'{deq:.2f} (IFR, DEQ): expect ~{total / 60:.0f} min for training and evaluation on '
          f'this machine (mmengine prints the ETA of each run)', flush=True)


def main():
    args = parse_args()
    py = sys.executable
    started = time.time()
    # The demo configs read data/shapes/ (their `data_root`).
    if not osp.exists(osp.join(ROOT, 'data', 'shapes', 'annotations', 'instances_val.json')):
        run('make the built-in dataset',
            [py, 'tools/dataset_converters/make_shapes_dataset.py', '--out', 'data/shapes'])
    if not osp.exists(osp.join(ROOT, args.pretrained)):
        run('convert the ImageNet MobileNetV2 backbone',
            [py, 'tools/model_converters/mobilenetv2_to_mmdet.py', '--out', args.pretrained])
    table_json = osp.join(ROOT, args.work_dir, 'model_zoo.json')
    if args.retrain or not osp.exists(table_json):
        with open(osp.join(ROOT, ROWS)) as f:
            (row, ) = yaml.safe_load(f)['rows']
        estimate_duration(row)
        run('train + evaluate stock and IFR Mask R-CNN', [
            py, 'tools/benchmark_model_zoo.py', '--rows', ROWS, '--train', '--work-dir',
            args.work_dir
        ])
    with open(table_json) as f:
        (row, ) = json.load(f)
    sides = ('baseline', 'ifr')
    run('draw predictions side by side', [
        py, 'tools/analysis_tools/compare_predictions.py', '--configs',
        *(row[s]['config'] for s in sides), '--checkpoints', *(row[s]['checkpoint'] for s in sides),
        '--names', 'stock 4-conv head', 'IFR head', '--num-images', str(args.num_vis), '--out-dir',
        osp.join(args.work_dir, 'vis')
    ])
    with open(osp.join(ROOT, args.work_dir, 'model_zoo.md')) as f:
        print('\n' + f.read())
    print(f'[demo] one seed is an anecdote: mean +- std of this pair over seeds is in {SEED_STUDY} '
          f'(rerun it: {seed_study_command(ROWS, 5)})')
    print('[demo] at this schedule the two heads are level within noise; trained twice as long, '
          f"IFR's mean is ahead by about a point ({SEED_STUDY}, section 6; rerun it: "
          f'{seed_study_command(ROWS_2X, 6)})')
    print(f'[demo] table: {args.work_dir}/model_zoo.md (+ .json), images: {args.work_dir}/vis/, '
          f'total {(time.time() - started) / 60:.1f} min')


if __name__ == '__main__':
    main()
