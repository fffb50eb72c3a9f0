"""The main job: stock vs IFR Mask R-CNN on the built-in data, end to end.

Steps (each skipped when its output already exists, so a rerun resumes):

1. make the built-in shapes dataset (``tools/dataset_converters``),
2. convert the ImageNet MobileNetV2 backbone (``tools/model_converters``),
3. train and evaluate both demo configs, measure them, print and save the
   table (``tools/benchmark_model_zoo.py`` on ``configs/ifr/demo/rows_shapes.yml``),
4. draw both models' predicted masks side by side
   (``tools/analysis_tools/compare_predictions.py``).

Run from the repository root, normally through ``make demo``.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ROWS = 'configs/ifr/demo/rows_shapes.yml'


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
    print(f'[demo] table: {args.work_dir}/model_zoo.md (+ .json), images: {args.work_dir}/vis/, '
          f'total {(time.time() - started) / 60:.1f} min')


if __name__ == '__main__':
    main()
