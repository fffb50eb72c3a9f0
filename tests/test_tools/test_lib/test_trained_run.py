import os.path as osp

import pytest
from mmengine.config import Config

from tools.lib.trained_run import check_trained_from, coco_aps

DEMO = osp.join(
    osp.dirname(__file__), '..', '..', '..', 'configs', 'ifr', 'demo',
    'condinst_mbv2_fpn_shapes_ifr.py')


def _dump_run(work_dir, **changes):
    """The config mmengine dumps into a run's work dir, with ``changes``
    (``key=value`` as ``--cfg-options``) merged in."""
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict(changes)
    cfg.dump(osp.join(work_dir, osp.basename(DEMO)))


def test_a_run_of_the_config_as_it_is_may_be_reused(tmp_path):
    _dump_run(str(tmp_path), **{'randomness.seed': 3, 'train_cfg.val_begin': 10**9})
    # Same options; when the run validated does not matter.
    check_trained_from(DEMO, str(tmp_path), {'randomness.seed': 3})
    # No dumped config: nothing to compare.
    check_trained_from(DEMO, str(tmp_path / 'empty'), {})


@pytest.mark.parametrize('changes,section', [
    ({'model.bbox_head.type': 'IFRCondInstBboxHead'}, 'model'),
    ({'train_cfg.max_iters': 900}, 'train_cfg'),
    ({'optim_wrapper.optimizer.lr': 1e-3}, 'optim_wrapper'),
    ({'randomness.seed': 1}, 'randomness'),
])
def test_a_run_of_another_version_of_the_config_is_refused(tmp_path, changes, section):
    _dump_run(str(tmp_path), **changes)
    with pytest.raises(RuntimeError, match=rf'{tmp_path}.*another version.*\({section} changed'):
        check_trained_from(DEMO, str(tmp_path), {})
    # The same change given as --cfg-options is the config the run came from.
    check_trained_from(DEMO, str(tmp_path), changes)


def test_coco_metrics_become_percent_aps():
    metrics = {'coco/segm_mAP': 0.3612, 'coco/segm_mAP_50': 0.5, 'coco/bbox_mAP': 0.9,
               'coco/segm_mAP_s': -1.0}
    # -1 is COCO's "no object of that size": absent, not -100.
    assert coco_aps(metrics, 'segm') == {'AP': 36.1, 'AP50': 50.0}
