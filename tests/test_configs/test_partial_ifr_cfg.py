"""Every key of an IFR head's ``ifr_cfg`` (configs/ifr/README.md, "What an IFR
config may set") given alone: from a config that inherits an mmifr config,
and from ``--cfg-options``. A partial ``ifr_cfg`` merges onto the head's
default refiner."""
import os.path as osp
import re

import pytest
from mmengine.config import Config, DictAction

from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmifr.engine.hooks import find_refiners
from mmifr.models.roi_heads.mask_heads.ifr_conv_fc_mask_head import MASK_HEAD_TEST_SOLVER

REPO_ROOT = osp.join(osp.dirname(__file__), osp.pardir, osp.pardir)
#: mmifr configs a user would inherit: the demo one (no ifr_cfg of its own)
#: and the R-50 one (which spells the refiner out).
BASES = ('configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py', 'configs/ifr/mask_rcnn_r50_ifr_1x.py')


#: key -> (value as Python, the same as --cfg-options strings, check of the refiner)
KEYS = {
    'type': ('IFRRefiner', ['type=IFRRefiner'],
             lambda r: r.budget is None and r.test_solver == MASK_HEAD_TEST_SOLVER),
    'mode': ('unroll', ['mode=unroll'], lambda r: r.mode == 'unroll' and r.budget is None),
    'num_steps': (3, ['num_steps=3'], lambda r: r.num_steps == 3),
    'block': (dict(mid_channels=64), ['block.mid_channels=64'],
              lambda r: r.block.conv1.out_channels == 64),
    'solver': (dict(max_iter=7), ['solver.max_iter=7'],
               lambda r: r.deq.options['max_iter'] == 7 and r.deq.options['solver'] == 'broyden'),
    'test_solver': (dict(solver='unroll', max_iter=3),
                    ['test_solver.solver=unroll', 'test_solver.max_iter=3'],
                    lambda r: r.test_solver == dict(solver='unroll', max_iter=3)),
    'jac_reg': (dict(weight=0.5, freq=0.2, end_ratio=0.8),
                ['jac_reg.weight=0.5', 'jac_reg.freq=0.2', 'jac_reg.end_ratio=0.8'],
                lambda r: r.jac_reg == dict(weight=0.5, num_probes=1, freq=0.2, ramp_ratio=0.0,
                                            end_ratio=0.8)),
    'budget': (2, ['budget=2'],
               lambda r: r.budget == 2 and r.fp_correction is None and r.test_solver == {}),
    'initializer': (dict(mid_channels=8), ['initializer.mid_channels=8'],
                    lambda r: r.initializer.reduce.out_channels == 8),
    'with_cp': (True, ['with_cp=True'], lambda r: r.with_cp and r.budget is None),
}


@pytest.fixture(scope='module', autouse=True)
def _registries():
    register_all_modules()


def _refiner(cfg):
    head = MODELS.build(cfg.model.roi_head.mask_head)
    (refiner, ) = find_refiners(head).values()
    return refiner


def _defaults_hold_for_the_rest(refiner, key):
    """Keys not given keep their value: the width of the block and the
    solve's iteration limit."""
    if key not in ('mode', 'num_steps', 'block', 'budget', 'initializer', 'type'):
        assert refiner.block.conv1.out_channels == 256
    if key != 'solver':
        assert refiner.deq.options['max_iter'] == 15


@pytest.mark.parametrize('base', BASES)
@pytest.mark.parametrize('key', sorted(KEYS))
def test_key_alone_in_an_inheriting_config(tmp_path, base, key):
    value, _, check = KEYS[key]
    child = tmp_path / 'child.py'
    child.write_text(
        f'_base_ = {osp.abspath(osp.join(REPO_ROOT, base))!r}\n'
        f'model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict({key}={value!r}))))\n')
    refiner = _refiner(Config.fromfile(str(child)))
    assert check(refiner)
    _defaults_hold_for_the_rest(refiner, key)


@pytest.mark.parametrize('base', BASES)
@pytest.mark.parametrize('key', sorted(KEYS))
def test_key_alone_from_cfg_options(base, key):
    _, options, check = KEYS[key]
    cfg = Config.fromfile(osp.join(REPO_ROOT, base))
    # Parsed as tools/train.py and tools/test.py parse them.
    action = DictAction(option_strings=['--cfg-options'], dest='cfg_options')
    namespace = type('Namespace', (), {})()
    action(None, namespace, [f'model.roi_head.mask_head.ifr_cfg.{o}' for o in options])
    cfg.merge_from_dict(namespace.cfg_options)
    refiner = _refiner(cfg)
    assert check(refiner)
    _defaults_hold_for_the_rest(refiner, key)


#: Keys that act on a budget's iterates: (--cfg-options key, value, the
#: refiner's attribute then, the start of the error given without a budget).
BUDGET_KEYS = {
    'fp_correction': ('fp_correction.gamma', 0.5, dict(gamma=0.5),
                      'fp_correction supervises the iterates of a fixed budget'),
    'consistency': ('consistency.weight', 0.5, dict(weight=0.5),
                    'consistency pulls the last iterate of a fixed budget onto the fixed point'),
}


@pytest.mark.parametrize('base', BASES)
@pytest.mark.parametrize('key', sorted(BUDGET_KEYS))
def test_a_budget_key_alone_asks_for_a_budget_and_works_beside_one(base, key):
    """fixed-point correction and consistency act on a budget's iterates:
    alone they are refused with what to set; with ``budget`` they apply."""
    option, value, expected, message = BUDGET_KEYS[key]
    cfg = Config.fromfile(osp.join(REPO_ROOT, base))
    cfg.merge_from_dict({f'model.roi_head.mask_head.ifr_cfg.{option}': value})
    with pytest.raises(ValueError, match=message + r'; set budget \(e.g. budget=2\)'):
        _refiner(cfg)
    cfg.merge_from_dict({'model.roi_head.mask_head.ifr_cfg.budget': 2})
    refiner = _refiner(cfg)
    assert getattr(refiner, key) == expected and refiner.budget == 2


def test_a_bad_value_alone_names_itself():
    cfg = Config.fromfile(osp.join(REPO_ROOT, BASES[0]))
    cfg.merge_from_dict({'model.roi_head.mask_head.ifr_cfg.budget': 0})
    with pytest.raises(ValueError, match='budget must be a positive int .*got 0'):
        _refiner(cfg)


def test_every_documented_key_is_tested_alone():
    """The keys of configs/ifr/README.md's ``ifr_cfg`` example are those
    above (``fp_correction`` and ``consistency``, which need a budget, have
    their own test)."""
    with open(osp.join(REPO_ROOT, 'configs', 'ifr', 'README.md')) as f:
        text = f.read().split('## What an IFR config may set', 1)[1].split('```')[1]
    documented = set(re.findall(r'^ {8}(\w+)=', text, flags=re.M))
    assert documented - set(BUDGET_KEYS) == set(KEYS)
