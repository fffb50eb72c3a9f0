"""Every config in ``configs/ifr/`` loads, builds and trains one step.

Three levels, all parametrized over the configs (ids are the config names):

* ``test_config_builds``: ``Config.fromfile``, the config's own
  ``custom_imports``, the model, its hooks, and that each ablation really
  changes what its name says (a misplaced key would silently be ignored;
  the Table 1 configs, with no refiner, are checked for their mask head);
* ``test_train_step``: one training step on two small random images (one
  with objects, one without) with finite losses and a finite, non-zero
  gradient on every IFR parameter; every refiner (every stage of Cascade /
  HTC) ran its solve;
* ``test_train_step_without_gt`` and ``test_predict``: a batch without any
  ground truth trains; prediction works with detections (``score_thr=0``:
  the RoI refiners run in eval mode) and with none (``score_thr`` above any
  score: the zero-detection output an untrained model typically gives,
  forced so that the empty path of every head is always exercised).

The models are the configs' own (ResNet-50/101, 256-channel heads, the
configured solver budget) with ``backbone.init_cfg=None`` (no downloads) and
fewer RPN proposals / sampled RoIs, which changes nothing in the IFR heads
but keeps a step around a second on one CPU thread. Only the heads are
initialised: mmengine's init bookkeeping over a whole ResNet costs ~5 s per
model and the backbone's init is irrelevant here.

Measured on the shared 2-core machine: ~80 s for the default selection.
The ablation configs (all Mask R-CNN variants, see ``test_config_builds`` for
what each one changes; ~35 s together) and SOLOv2 (512-channel towers on
40x40 grids: ~95 s for its three tests) are marked ``slow``.
"""
import glob
import math
import os
import os.path as osp
import subprocess
import sys
from contextlib import contextmanager

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.utils import import_modules_from_strings

from mmdet.registry import HOOKS, MODELS
from mmdet.testing import demo_mm_inputs, demo_track_inputs
from mmdet.utils import register_all_modules
from mmifr.engine.hooks import IFRSolverStatsHook, IFRUnrollWarmupHook, find_refiners
from mmifr.models.roi_heads import (IFRBoundaryPreservingMaskHead, IFRConvFCMaskHead,
                                    IFRHTCMaskHead)

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs', 'ifr')
IMG_SHAPE = (3, 96, 128)


def _collect_configs():
    """All configs under ``configs/ifr`` except ``_base_`` and ``demo``
    (which trains on its own dataset and has its own tests)."""
    paths = []
    for path in sorted(glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)):
        parts = osp.relpath(path, CONFIG_ROOT).split(os.sep)
        if parts[0] in ('_base_', 'demo'):
            continue
        paths.append(osp.relpath(path, CONFIG_ROOT))
    return paths


CONFIGS = _collect_configs()
SLOW_MAIN = {'solov2_r50_ifr_3x.py'}


def _id(rel_path):
    return osp.splitext(rel_path)[0]


def _is_ablation(rel_path):
    return rel_path.startswith('ablations' + os.sep)


def _param(rel_path):
    slow = _is_ablation(rel_path) or rel_path in SLOW_MAIN
    return pytest.param(rel_path, id=_id(rel_path), marks=[pytest.mark.slow] if slow else [])


#: Refiners each framework must have, by module name.
EXPECTED_REFINERS = {
    'mask_rcnn': ['roi_head.mask_head.convs.0'],
    'bmask_rcnn': ['roi_head.mask_head.convs.0'],
    'ms_rcnn': ['roi_head.mask_head.convs.0'],
    'cascade_mask_rcnn': [f'roi_head.mask_head.{i}.convs.0' for i in range(3)],
    'htc': [f'roi_head.mask_head.{i}.convs.0' for i in range(3)],
    'masktrack_rcnn': ['detector.roi_head.mask_head.convs.0'],
    'retinanet': ['bbox_head.cls_convs.0', 'bbox_head.reg_convs.0'],
    'freeanchor': ['bbox_head.cls_convs.0', 'bbox_head.reg_convs.0'],
    'fcos': ['bbox_head.cls_convs.0', 'bbox_head.reg_convs.0'],
    'reppoints': ['bbox_head.cls_convs.0', 'bbox_head.reg_convs.0'],
    'sipmask': ['bbox_head.cls_convs.0', 'bbox_head.reg_convs.0'],
    'sipmask_vis': ['detector.bbox_head.cls_convs.0', 'detector.bbox_head.reg_convs.0'],
    # The paper's instance segmentation rows refine the mask branch (Sec. 3.2).
    'solo': ['mask_head.mask_convs.0'],
    'solov2': ['mask_head.kernel_convs.0'],
    'blendmask': ['mask_head.basis_convs.0'],
    'meinst': ['bbox_head.mask_convs.0'],
    'condinst': ['mask_head.mask_feature_head.conv_branch.0'],
    'boxinst': ['mask_head.mask_feature_head.conv_branch.0'],
}

#: The paper's settings (Sec. 4.2): DEQ, bounded block, 15/15 Broyden steps.
DEFAULT_REFINER = dict(
    mode='deq', form='bounded', mid_channels=256, max_iter=15, backward_max_iter=15)
#: What each ablation changes (Tables 6-9 and the Eq. 5 / no-double-res ones).
ABLATIONS = {
    'mask_rcnn_r50_ifr-eq5-literal_1x': dict(form='literal'),
    'mask_rcnn_r50_ifr-explicit_1x': dict(mode='explicit', num_steps=4),
    'mask_rcnn_r50_ifr-iter3_1x': dict(max_iter=3, backward_max_iter=3),
    'mask_rcnn_r50_ifr-iter5_1x': dict(max_iter=5, backward_max_iter=5),
    'mask_rcnn_r50_ifr-iter10_1x': dict(max_iter=10, backward_max_iter=10),
    'mask_rcnn_r50_ifr-iter20_1x': dict(max_iter=20, backward_max_iter=20),
    'mask_rcnn_r50_ifr-mid32_1x': dict(mid_channels=32),
    'mask_rcnn_r50_ifr-mid64_1x': dict(mid_channels=64),
    'mask_rcnn_r50_ifr-mid128_1x': dict(mid_channels=128),
    'mask_rcnn_r50_ifr-mid512_1x': dict(mid_channels=512),
    'mask_rcnn_r50_ifr-no-double-res_1x': dict(form='plain'),
    'mask_rcnn_r50_ifr-unroll_1x': dict(mode='unroll', num_steps=4),
}


#: Table 1 / Fig. 1 (a)-(c): mmdet's Mask R-CNN with 0-4 stacked or 4
#: weight-shared convs in the mask head, and no refiner at all.
TABLE1 = {
    **{f'mask_rcnn_r50_convs{n}_1x': dict(type='FCNMaskHead', num_convs=n) for n in range(4)},
    'mask_rcnn_r50_convs4-shared_1x': dict(type='WeightSharedFCNMaskHead', num_convs=4,
                                           shortcut=False),
    'mask_rcnn_r50_convs4-shared-skip_1x': dict(type='WeightSharedFCNMaskHead', num_convs=4,
                                                shortcut=True),
}


#: The stock side of the frameworks mmdet lacks (mmifr builds both sides).
STOCK = {
    'bmask_rcnn_r50_1x': ('roi_head.mask_head', 'BoundaryPreservingMaskHead'),
    'meinst_r50_1x': ('bbox_head', 'MEInstBboxHead'),
    'blendmask_r50_1x': ('mask_head', 'BlendMaskHead'),
    'masktrack_rcnn_r50_ms_1x': ('detector.roi_head.mask_head', 'FCNMaskHead'),
    'sipmask_r50_1x': ('bbox_head', 'SipMaskHead'),
    'sipmask_vis_r50_1x': ('detector.bbox_head', 'SipMaskHead'),
    'sipmask_vis_r50_ms_1x': ('detector.bbox_head', 'SipMaskHead'),
}


def _assert_table1_head(name, cfg, model):
    expected = TABLE1[name]
    head = model.roi_head.mask_head
    assert type(head).__name__ == expected['type']
    assert head.num_convs == expected['num_convs']
    if expected['type'] == 'FCNMaskHead':
        assert len(head.convs) == expected['num_convs']
    else:
        (stack, ) = head.convs
        assert (stack.num_repeats, stack.shortcut) == (4, expected['shortcut'])
        # mmdet's predictor init, as the head of the table's other rows.
        assert head.predictor_init_std is None
    assert not find_refiners(model) and not cfg.get('custom_hooks')


#: The inference solve of the RoI mask heads (IFRConvFCMaskHead / IFRHTCMaskHead)
#: unless a config names one; Table 7's ablations evaluate with their own solve.
MASK_HEAD_TEST_SOLVER = dict(tol=1e-2, output='fz')
TABLE7_ABLATIONS = tuple(f'mask_rcnn_r50_ifr-iter{n}_1x' for n in (3, 5, 10, 20))


def _expected_test_solver(rel_path, refiner_name, model):
    head = model.get_submodule(refiner_name.rsplit('.', 2)[0])
    refiner = model.get_submodule(refiner_name)
    if osp.basename(_id(rel_path)) in TABLE7_ABLATIONS or refiner.budget is not None:
        # Table 7 evaluates each solve as trained; a budget runs itself.
        return {}
    if isinstance(head, (IFRConvFCMaskHead, IFRHTCMaskHead, IFRBoundaryPreservingMaskHead)):
        return MASK_HEAD_TEST_SOLVER
    return {}


def _expected_budget(rel_path):
    """The paper's protocol (a solve) everywhere but the configs at the
    stock model's cost."""
    return 2 if '-budget' in osp.basename(_id(rel_path)) else None


def _framework(rel_path):
    name = osp.basename(_id(rel_path))
    for key in sorted(EXPECTED_REFINERS, key=len, reverse=True):
        if name.startswith(key + '_'):
            return key
    raise KeyError(f'no expectations for {rel_path}: add it to EXPECTED_REFINERS')


def _detector_cfg(model_cfg):
    # Video models wrap a detector (and train on key + reference frames).
    return model_cfg.get('detector', model_cfg)


def _load(rel_path):
    cfg = Config.fromfile(osp.join(CONFIG_ROOT, rel_path))
    det = _detector_cfg(cfg.model)
    det.backbone.init_cfg = None  # no pretrained download
    det.pop('init_cfg', None)  # MaskTrack R-CNN loads a COCO Mask R-CNN
    coder = det.get('mask_head', {}).get('mask_coder')
    if coder:
        coder.pca_file = None  # MEInst: fitted on COCO by the user; see _load_test_pca
    return cfg


def _load_test_pca(model):
    """A PCA for MEInst's coder in place of the COCO one: the leading
    ``dim`` directions of a random orthonormal basis, unit variances."""
    coder = getattr(getattr(model, 'mask_head', None), 'mask_coder', None)
    if coder is None:
        return
    n = coder.mask_size**2
    basis = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(0)))[0]
    coder.load_pca(dict(components=basis[:coder.dim], explained_variance=torch.ones(coder.dim),
                        mean=torch.zeros(n)))


def _shrink_training(cfg):
    """Fewer proposals and sampled RoIs: the mask heads see <= 8 positives."""
    det = _detector_cfg(cfg.model)
    train_cfg, test_cfg = det.get('train_cfg') or {}, det.get('test_cfg') or {}
    if train_cfg.get('rpn_proposal'):
        train_cfg.rpn_proposal.update(nms_pre=100, max_per_img=50)
    if test_cfg.get('rpn'):
        test_cfg.rpn.update(nms_pre=100, max_per_img=50)
    rcnn = train_cfg.get('rcnn')
    for stage in (rcnn if isinstance(rcnn, list) else [rcnn] if rcnn else []):
        stage.sampler.num = 32


def _init_heads(module):
    """``init_weights`` of everything but the backbone (see module doc)."""
    for name, child in module.named_children():
        if name == 'backbone':
            continue
        if name == 'detector':
            _init_heads(child)
        elif hasattr(child, 'init_weights'):
            child.init_weights()


@pytest.fixture(scope='module', autouse=True)
def _registries():
    register_all_modules()
    # BoxInst's mask loss warms up by the runner's iteration.
    MessageHub.get_current_instance().update_info('iter', 0)


@pytest.mark.parametrize('rel_path', [pytest.param(p, id=_id(p)) for p in CONFIGS])
def test_config_builds(rel_path):
    cfg = _load(rel_path)
    name = osp.basename(_id(rel_path))
    if name in TABLE1:
        # The stock-head rows are mmdet's alone and need no import.
        if TABLE1[name]['type'] != 'FCNMaskHead':
            assert cfg.custom_imports == dict(imports=['mmifr'], allow_failed_imports=False)
            import_modules_from_strings(**cfg.custom_imports)
        _assert_table1_head(name, cfg, MODELS.build(cfg.model))
        return
    if name in STOCK:
        if 'custom_imports' in cfg:  # mmifr's ports need it, a stock mmdet model does not
            import_modules_from_strings(**cfg.custom_imports)
        model = MODELS.build(cfg.model)
        path, head_type = STOCK[name]
        assert type(model.get_submodule(path)).__name__ == head_type
        assert not find_refiners(model) and not cfg.get('custom_hooks')
        return
    imports = cfg.get('custom_imports', {})
    assert 'mmifr' in imports.get('imports', []), 'config must import mmifr itself'
    assert imports.get('allow_failed_imports') is False
    import_modules_from_strings(**imports)
    model = MODELS.build(cfg.model)

    refiners = find_refiners(model)
    assert sorted(refiners) == sorted(EXPECTED_REFINERS[_framework(rel_path)])
    expected = dict(DEFAULT_REFINER, **ABLATIONS.get(osp.basename(_id(rel_path)), {}))
    for name, refiner in refiners.items():
        blocks = refiner.blocks if refiner.mode == 'explicit' else [refiner.block]
        actual = dict(
            mode=refiner.mode,
            form=blocks[0].form,
            mid_channels=blocks[0].conv1.out_channels,
            max_iter=refiner.deq.options['max_iter'],
            backward_max_iter=refiner.deq.options['backward_max_iter'])
        if 'num_steps' in expected:
            actual['num_steps'] = len(blocks) if refiner.mode == 'explicit' else \
                refiner.num_steps
        if refiner.channels != 256:  # SOLOv2's towers: 512
            expected['mid_channels'] = refiner.channels
        assert actual == expected, name
        assert refiner.test_solver == _expected_test_solver(rel_path, name, model), name
        assert refiner.budget == _expected_budget(rel_path), name

    hooks = [HOOKS.build(dict(h)) for h in cfg.get('custom_hooks', [])]
    warmup = [h for h in hooks if isinstance(h, IFRUnrollWarmupHook)]
    if any(r.mode == 'deq' for r in refiners.values()):
        # The reference recipe: unrolled for the first 5/9, then DEQ.
        assert len(warmup) == 1 and math.isclose(warmup[0].switch_ratio, 5 / 9)
        assert warmup[0].unroll_steps == 4
        assert any(isinstance(h, IFRSolverStatsHook) for h in hooks)
    else:
        assert not warmup, 'the warm-up hook only concerns DEQ refiners'


def test_custom_imports_alone_register_mmifr():
    """A fresh interpreter that never imports mmifr itself builds a config
    through its ``custom_imports`` (what tools/train.py of mmdet does)."""
    code = '\n'.join([
        'import sys',
        'from mmengine.config import Config',
        'from mmengine.utils import import_modules_from_strings',
        'from mmdet.registry import MODELS',
        'from mmdet.utils import register_all_modules',
        'register_all_modules()',
        "assert 'mmifr' not in sys.modules",
        "assert MODELS.get('IFRConvFCMaskHead') is None",
        f"cfg = Config.fromfile({osp.join(CONFIG_ROOT, 'mask_rcnn_r50_ifr_1x.py')!r})",
        'cfg.model.backbone.init_cfg = None',
        'import_modules_from_strings(**cfg.custom_imports)',
        'model = MODELS.build(cfg.model)',
        "print(type(model.roi_head.mask_head).__name__)",
    ])
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', code],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith('IFRConvFCMaskHead')


class _Case:
    """A built model of one config, shared by the tests of that config."""

    def __init__(self, rel_path):
        self.rel_path = rel_path
        self.cfg = _load(rel_path)
        _shrink_training(self.cfg)
        import_modules_from_strings(**self.cfg.get('custom_imports', dict(imports=[])))
        torch.manual_seed(0)
        self.model = MODELS.build(self.cfg.model)
        _init_heads(self.model)
        _load_test_pca(self.model)
        self.refiners = find_refiners(self.model)
        self.is_video = 'detector' in self.cfg.model
        roi_head = getattr(self.model, 'roi_head', None)
        self.with_semantic = bool(getattr(roi_head, 'with_semantic', False))

    def inputs(self, num_items, training=True):
        """Packed inputs of ``len(num_items)`` images (videos: one 2-frame
        video with ``num_items[0]`` objects per frame)."""
        if self.is_video:
            if training:
                data = demo_track_inputs(
                    batch_size=1,
                    num_frames=2,
                    key_frames_inds=[0],
                    image_shapes=IMG_SHAPE,
                    num_items=num_items[:1],
                    num_classes=2,
                    with_mask=True)
            else:
                data = demo_track_inputs(
                    batch_size=1, num_frames=1, image_shapes=IMG_SHAPE, num_classes=2)
        else:
            data = demo_mm_inputs(
                len(num_items),
                image_shapes=[IMG_SHAPE] * len(num_items),
                num_items=list(num_items),
                num_classes=10,
                with_mask=True,
                with_semantic=self.with_semantic)
        return self.model.data_preprocessor(data, training)

    def clear_stats(self):
        for refiner in self.refiners.values():
            refiner.pop_stats()

    def train_step(self, num_items):
        self.model.train()
        self.model.zero_grad(set_to_none=True)
        self.clear_stats()
        losses = self.model(**self.inputs(num_items), mode='loss')
        loss, log_vars = self.model.parse_losses(losses)
        loss.backward()
        return loss, log_vars


@pytest.fixture(scope='module', params=[_param(p) for p in CONFIGS])
def case(request):
    return _Case(request.param)


def _assert_finite_losses(loss, log_vars):
    assert torch.isfinite(loss), log_vars
    bad = {k: v for k, v in log_vars.items() if not math.isfinite(float(v))}
    assert not bad, bad


def test_train_step(case):
    loss, log_vars = case.train_step([3, 0])
    _assert_finite_losses(loss, log_vars)
    stats = {name: refiner.pop_stats() for name, refiner in case.refiners.items()}
    for name, refiner in case.refiners.items():
        for pname, p in refiner.named_parameters():
            assert p.grad is not None, f'{name}.{pname}: no gradient'
            assert torch.isfinite(p.grad).all(), f'{name}.{pname}: non-finite gradient'
            assert p.grad.abs().sum() > 0, f'{name}.{pname}: zero gradient'
        if refiner.mode == 'explicit':
            continue  # no solver, no statistics
        # Every refiner, every stage of Cascade / HTC included, ran its solve.
        assert stats[name] and all(s.forward.batch_size > 0 for s in stats[name]), name
        if refiner.mode == 'deq' and refiner.budget is None:
            # The implicit backward ran too (not necessarily for every solve:
            # SOLOv2 uses the kernels of a level only where it has positives).
            assert any(s.backward is not None for s in stats[name]), name
    if _framework(case.rel_path) == 'htc':
        # HTC's mask information flow: stage i re-runs the mask heads 0..i-1
        # for their res_feat, so the stage refiners run 3, 2 and 1 times.
        calls = [len(stats[f'roi_head.mask_head.{i}.convs.0']) for i in range(3)]
        assert calls == [3, 2, 1]


#: Branches that mmdet itself drops from the graph when a batch has no
#: positive sample, mapped to a stock parameter of the same branch: CondInst /
#: BoxInst's mask loss is then ``new_zeros(1).mean()`` and SOLOv2's is
#: ``mask_feats.sum() * 0``, so the refiner inside gets no gradient either.
DETACHED_WITHOUT_GT = {
    'mask_head.mask_feature_head.conv_branch.0': 'mask_head.mask_feature_head.conv_pred.weight',
    'mask_head.kernel_convs.0': 'mask_head.conv_kernel.weight',
}


def test_train_step_without_gt(case):
    loss, log_vars = case.train_step([0, 0] if not case.is_video else [0])
    _assert_finite_losses(loss, log_vars)
    params = dict(case.model.named_parameters())
    for name, refiner in case.refiners.items():
        if name in DETACHED_WITHOUT_GT:
            # As detached as mmdet's own layers of that branch.
            assert params[DETACHED_WITHOUT_GT[name]].grad is None
            continue
        for pname, p in refiner.named_parameters():
            # RoI heads see no RoIs: zero gradients, but present (DDP).
            assert p.grad is not None and torch.isfinite(p.grad).all(), f'{name}.{pname}'


@contextmanager
def _test_cfg_values(model, **values):
    """Temporarily set keys (at any depth) of every ``test_cfg`` in ``model``."""
    saved = []

    def visit(cfg):
        for key in list(cfg.keys()):
            if key in values:
                saved.append((cfg, key, cfg[key]))
                cfg[key] = values[key]
            elif isinstance(cfg[key], dict):
                visit(cfg[key])

    seen = set()
    for module in model.modules():
        cfg = getattr(module, 'test_cfg', None)
        if isinstance(cfg, dict) and id(cfg) not in seen:
            seen.add(id(cfg))
            visit(cfg)
    try:
        yield
    finally:
        for cfg, key, value in reversed(saved):
            cfg[key] = value


def _predictions(case):
    case.model.eval()
    case.clear_stats()
    with torch.no_grad():
        results = case.model(**case.inputs([1], training=False), mode='predict')
    assert len(results) == 1
    if case.is_video:
        frame = results[0][0]
        return frame.pred_track_instances, frame
    return results[0].pred_instances, results[0]


def _assert_consistent(instances, sample):
    n = len(instances)
    for key, value in instances.items():
        assert len(value) == n, (key, len(value), n)
    assert instances.scores.shape == (n, )
    if 'masks' in instances:
        assert tuple(instances.masks.shape) == (n, *sample.ori_shape)
    return n


def test_predict(case):
    # Forced detections: the RoI mask heads (and their refiners) run in eval.
    with _test_cfg_values(case.model, score_thr=0.0, max_per_img=5):
        instances, sample = _predictions(case)
    n = _assert_consistent(instances, sample)
    roi_based = _framework(case.rel_path) in ('mask_rcnn', 'bmask_rcnn', 'ms_rcnn',
                                              'cascade_mask_rcnn', 'htc', 'masktrack_rcnn')
    if roi_based:
        assert 0 < n <= 5
        assert 'masks' in instances
    for name, refiner in case.refiners.items():
        if refiner.mode != 'explicit':
            stats = refiner.pop_stats()
            assert stats and all(s.backward is None for s in stats), name
            if roi_based:
                # Each stage's mask head refined exactly the detections.
                assert [s.forward.batch_size for s in stats] == [n], name
    # No detection (score_thr above any score): the empty path of every head.
    with _test_cfg_values(case.model, score_thr=1.01):
        instances, sample = _predictions(case)
    assert _assert_consistent(instances, sample) == 0
    if roi_based:
        # No RoI reached the mask heads.
        assert not any(s.forward.batch_size for r in case.refiners.values() for s in r.pop_stats())
