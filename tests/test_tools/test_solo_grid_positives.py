"""Tests of ``tools/analysis_tools/solo_grid_positives.py``: how often each
SOLO grid channel is a positive, on the SOLO demo config with a tiny dataset."""
import json
import os.path as osp

import numpy as np
import pytest

from tool_runs import REPO_ROOT, load_tool

CONFIG = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo', '{}_mbv2_fpn_shapes_baseline.py')

grid_positives = load_tool('tools/analysis_tools/solo_grid_positives.py')


def _options(tiny_coco):
    return [
        f"train_dataloader.dataset.data_root={tiny_coco['data_root']}",
        f"train_dataloader.dataset.ann_file={tiny_coco['ann_file']}",
        f"train_dataloader.dataset.data_prefix.img={tiny_coco['img_prefix']}",
        f"train_dataloader.dataset.metainfo.classes={list(tiny_coco['classes'])}",
    ]


def test_summary_scales_one_epochs_counts_to_the_schedule():
    counts = [np.array([0., 1., 2., 3.]), np.array([4.])]
    rows = grid_positives.summarise(counts, [2, 1], epochs=2.5)
    assert rows[0] == dict(grid=2, channels=4, never=0.25, below_5=0.5, median=3.75, mean=3.75)
    assert rows[1] == dict(grid=1, channels=1, never=0.0, below_5=0.0, median=10.0, mean=10.0)


def test_coarser_grids_give_each_channel_more_positives(tiny_coco, tmp_path):
    out = tmp_path / 'stock.json'
    args = [CONFIG.format('solo'), '--iters', '10', '--cfg-options', *_options(tiny_coco)]
    stock = grid_positives.main(args + ['--out', str(out)])
    assert json.loads(out.read_text()) == stock
    assert stock['grids'] == [40, 36, 24, 16, 12]
    assert (stock['num_images'], stock['batch_size']) == (4, 2)
    assert stock['epochs'] == pytest.approx(10 * 2 / 4)
    coarse = grid_positives.main(args + ['--grids', '10', '9', '6', '4', '3'])
    assert [level['channels'] for level in coarse['levels']] == [100, 81, 36, 16, 9]
    # Each object makes at least one cell positive on its level(s).
    assert sum(level['mean'] * level['channels'] for level in stock['levels']) > 0
    for fine, few in zip(stock['levels'], coarse['levels']):
        # The same objects' centre regions, spread over fewer channels.
        assert few['mean'] >= fine['mean']
        assert few['never'] <= fine['never']


def test_a_head_with_dynamic_kernels_is_refused(tiny_coco):
    with pytest.raises(ValueError, match='SOLOV2Head is not a SOLO head with one mask channel'):
        grid_positives.main([CONFIG.format('solov2'), '--cfg-options', *_options(tiny_coco)])
