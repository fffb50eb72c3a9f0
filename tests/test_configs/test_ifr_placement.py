"""IFR goes where the paper puts it: an instance segmenter's mask-branch tower
(Sec. 3.2), and nowhere else by default; refining more is a named variant."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmdet.registry import MODELS

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'ifr')
#: The mask branch's stacked convs of each instance segmentation framework
#: whose IFR head could refine more than that.
MASK_BRANCH = {
    'meinst': ('IFRMEInstBboxHead', ('mask_convs', )),
    'blendmask': ('IFRBlendMaskHead', ('basis_convs', )),
    'solo': ('IFRSOLOHead', ('mask_convs', )),
    'solov2': ('IFRSOLOV2Head', ('kernel_convs', )),
}
#: Per framework, its COCO config and demo configs.
DEFAULTS = {
    'meinst': ['meinst_r50_ifr_1x', 'demo/meinst_mbv2_fpn_shapes_ifr',
               'demo/meinst_mbv2_fpn_shapes-3x_ifr'],
    'blendmask': ['blendmask_r50_ifr_1x', 'demo/blendmask_mbv2_fpn_shapes_ifr'],
    'solo': ['solo_r50_ifr_3x', 'demo/solo_mbv2_fpn_shapes_ifr',
             'demo/solo_mbv2_fpn_shapes-3x_ifr'],
    'solov2': ['solov2_r50_ifr_3x', 'demo/solov2_mbv2_fpn_shapes_ifr'],
}
VARIANTS = {
    'demo/meinst_mbv2_fpn_shapes-3x_ifr-all-towers': ('mask_convs', 'cls_convs', 'reg_convs'),
    'demo/blendmask_mbv2_fpn_shapes_ifr-all-towers': ('basis_convs', 'cls_convs', 'reg_convs'),
    'demo/solo_mbv2_fpn_shapes_ifr-all-towers': ('mask_convs', 'cls_convs'),
    'demo/solov2_mbv2_fpn_shapes_ifr-all-towers': ('kernel_convs', 'cls_convs'),
}


def _refined_towers(config):
    """``{head key: towers}`` of every IFR head of a config, as configured
    (``ifr_towers``) or the class's default."""
    import mmifr  # noqa: F401
    model = Config.fromfile(osp.join(CONFIGS, config + '.py')).model
    towers = {}
    for key, head in model.items():
        if isinstance(head, dict) and str(head.get('type', '')).startswith('IFR'):
            cls = MODELS.get(head['type'])
            towers[key] = tuple(head.get('ifr_towers') or cls.ifr_towers)
    return towers


@pytest.mark.parametrize('framework, config',
                         [(f, c) for f, configs in DEFAULTS.items() for c in configs])
def test_default_configs_refine_the_mask_branch_only(framework, config):
    head_type, branch = MASK_BRANCH[framework]
    towers = _refined_towers(config)
    assert list(towers.values()) == [branch], towers
    model = Config.fromfile(osp.join(CONFIGS, config + '.py')).model
    assert [h['type'] for h in model.values() if isinstance(h, dict)
            and str(h.get('type', '')).startswith('IFR')] == [head_type]


@pytest.mark.parametrize('config', sorted(VARIANTS))
def test_all_tower_variants_are_named_and_refine_more(config):
    refined = sorted(t for towers in _refined_towers(config).values() for t in towers)
    assert refined == sorted(VARIANTS[config])
