"""The demo configs: each pair differs only in the mask head."""
import glob
import inspect
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS
from mmifr.engine.hooks import find_refiners
from mmifr.models.roi_heads.mask_heads.ifr_conv_fc_mask_head import BUDGET_IFR_CFG

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_DIR = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo')
PAIRS = ['shapes', 'shapes-2x', 'fruits-nuts', 'coco-subset']


def _demo(pair: str, side: str) -> Config:
    return Config.fromfile(osp.join(DEMO_DIR, f'mask-rcnn_mbv2_fpn_{pair}_{side}.py'))


@pytest.mark.parametrize('pair', PAIRS)
def test_pair_differs_only_in_the_mask_head_and_ifr_runtime(pair):
    base, ifr = _demo(pair, 'baseline').to_dict(), _demo(pair, 'ifr').to_dict()
    base_head = base['model']['roi_head'].pop('mask_head')
    ifr_head = ifr['model']['roi_head'].pop('mask_head')
    # mmdet's FCNMaskHead with the IFR head's predictor init: the towers are
    # all that differs (the predictor init is shared).
    assert base_head.pop('type') == 'SmallInitFCNMaskHead'
    assert ifr_head.pop('type') == 'IFRConvFCMaskHead'
    assert base_head == ifr_head
    assert base['custom_imports'] == ifr['custom_imports']
    assert ifr['custom_imports']['imports'] == ['mmifr']
    assert [h['type'] for h in ifr.pop('custom_hooks')] == [
        'IFRSolverStatsHook', 'IFRUnrollWarmupHook', 'IFRAuxLossHook'
    ]
    assert 'custom_hooks' not in base
    assert base == ifr


def _condinst(schedule, side):
    return Config.fromfile(osp.join(DEMO_DIR, f'condinst_mbv2_fpn_shapes{schedule}_{side}.py'))


@pytest.mark.parametrize('side', ['baseline', 'ifr'])
@pytest.mark.parametrize('pair', ['mask-rcnn', 'condinst'])
def test_2x_demo_differs_only_in_the_schedule_length(pair, side):
    if pair == 'mask-rcnn':
        one, two = _demo('shapes', side).to_dict(), _demo('shapes-2x', side).to_dict()
    else:
        one, two = _condinst('', side).to_dict(), _condinst('-2x', side).to_dict()
    assert (one['max_iters'], two['max_iters']) == (450, 900)
    assert two['train_cfg'] == dict(one['train_cfg'], max_iters=900, val_interval=900)
    assert two['param_scheduler'][1]['milestones'] == [720]
    assert two['default_hooks']['checkpoint'].pop('interval') == 900
    one['default_hooks']['checkpoint'].pop('interval')
    if pair == 'mask-rcnn':
        # The 2x Mask R-CNN pairs start their shared parts from the same
        # weights (docs/ifr_default_at_2x.md).
        assert two['default_hooks'].pop('paired_init') == dict(type='PairedInitHook')
    for key in ('max_iters', 'train_cfg', 'param_scheduler'):
        one.pop(key), two.pop(key)
    assert one == two


def _bmask(side):
    return Config.fromfile(osp.join(DEMO_DIR, f'bmask-rcnn_mbv2_fpn_shapes_{side}.py'))


def test_bmask_pair_differs_only_in_the_mask_branch_tower_and_ifr_runtime():
    base, ifr = _bmask('baseline').to_dict(), _bmask('ifr').to_dict()
    assert base['model']['roi_head'].pop('mask_head').pop('type') == 'BoundaryPreservingMaskHead'
    assert ifr['model']['roi_head'].pop('mask_head').pop('type') == \
        'IFRBoundaryPreservingMaskHead'
    assert [h['type'] for h in ifr.pop('custom_hooks')] == [
        'IFRSolverStatsHook', 'IFRUnrollWarmupHook', 'IFRAuxLossHook'
    ]
    assert base == ifr
    # Everything but the RoI head is the demo Mask R-CNN's.
    mask_rcnn = _demo('shapes', 'baseline').to_dict()
    assert base['model'].pop('roi_head')['type'] == 'BMaskRoIHead'
    mask_rcnn['model'].pop('roi_head')
    assert base == mask_rcnn


def test_meinst_pair_differs_only_in_the_head_towers_and_ifr_runtime():
    path = osp.join(DEMO_DIR, 'meinst_mbv2_fpn_shapes_{}.py')
    base = Config.fromfile(path.format('baseline')).to_dict()
    ifr = Config.fromfile(path.format('ifr')).to_dict()
    assert base['model']['bbox_head'].pop('type') == 'MEInstBboxHead'
    assert ifr['model']['bbox_head'].pop('type') == 'IFRMEInstBboxHead'
    assert [h['type'] for h in ifr.pop('custom_hooks')] == [
        'IFRSolverStatsHook', 'IFRUnrollWarmupHook', 'IFRAuxLossHook'
    ]
    assert base == ifr
    # Data, schedule and backbone are the demo Mask R-CNN's.
    mask_rcnn = _demo('shapes', 'baseline').to_dict()
    meinst_model, mask_rcnn_model = base.pop('model'), mask_rcnn.pop('model')
    assert base == mask_rcnn
    assert meinst_model['backbone'] == mask_rcnn_model['backbone']
    assert meinst_model['bbox_head']['num_classes'] == 4


@pytest.mark.parametrize('framework', ['meinst', 'retinanet', 'solo'])
def test_3x_pairs_differ_from_the_demo_pair_only_in_the_schedule(framework):
    for side in ('baseline', 'ifr'):
        demo = Config.fromfile(osp.join(DEMO_DIR,
                                        f'{framework}_mbv2_fpn_shapes_{side}.py')).to_dict()
        long = Config.fromfile(osp.join(DEMO_DIR,
                                        f'{framework}_mbv2_fpn_shapes-3x_{side}.py')).to_dict()
        assert long['train_cfg']['max_iters'] == 3 * demo['train_cfg']['max_iters'] == 1350
        assert long['train_cfg']['val_interval'] == 1350
        assert long['default_hooks']['checkpoint']['interval'] == 1350
        (step, ) = [s for s in long['param_scheduler'] if s['type'] == 'MultiStepLR']
        assert (step['end'], step['milestones']) == (1350, [1080])
        for cfg in (demo, long):
            for key in ('max_iters', 'train_cfg', 'param_scheduler', 'default_hooks'):
                cfg.pop(key)
        assert long == demo


def test_blendmask_pair_differs_only_in_the_towers_and_ifr_runtime():
    path = osp.join(DEMO_DIR, 'blendmask_mbv2_fpn_shapes_{}.py')
    base = Config.fromfile(path.format('baseline')).to_dict()
    ifr = Config.fromfile(path.format('ifr')).to_dict()
    assert base['model']['bbox_head']['type'] == ifr['model']['bbox_head']['type'] == (
        'CondInstBboxHead')
    assert base['model']['mask_head'].pop('type') == 'BlendMaskHead'
    assert ifr['model']['mask_head'].pop('type') == 'IFRBlendMaskHead'
    ifr.pop('custom_hooks')
    assert base == ifr
    # The detector, data and schedule are the MEInst demo's.
    meinst = Config.fromfile(osp.join(DEMO_DIR, 'meinst_mbv2_fpn_shapes_baseline.py')).to_dict()
    for cfg in (base, meinst):
        for key in ('type', 'mask_head'):
            cfg['model'].pop(key)
        for key in ('type', 'num_params'):
            cfg['model']['bbox_head'].pop(key, None)
        cfg.pop('num_bases', None), cfg.pop('attn_size', None)
    assert base == meinst


def test_solo_and_solov2_demos_share_the_neck_and_level_assignment():
    solo, solov2 = (Config.fromfile(osp.join(DEMO_DIR, f'{m}_mbv2_fpn_shapes_baseline.py')).model
                    for m in ('solo', 'solov2'))
    assert solo.neck == solov2.neck
    for key in ('strides', 'scale_ranges', 'num_grids', 'pos_scale', 'feat_channels'):
        assert solo.mask_head[key] == solov2.mask_head[key]
    assert solo.test_cfg == solov2.test_cfg


def _framework(prefix: str, side: str = 'baseline') -> dict:
    """A side of a framework's demo pair, ``<prefix>_mbv2_fpn_shapes_<side>.py``."""
    return Config.fromfile(osp.join(DEMO_DIR, f'{prefix}_mbv2_fpn_shapes_{side}.py')).to_dict()


def test_htc_demo_has_the_demo_roi_setup_in_every_stage():
    base = _framework('htc')
    base_heads = base['model']['roi_head']['mask_head']
    # The first stage has no earlier mask feature to add (mmdet's HTC).
    assert [h.get('with_conv_res', True) for h in base_heads] == [False, True, True]
    assert {h['num_classes'] for h in base_heads} == {4}
    # The demo Mask R-CNN's RoI set-up in each of the 3 stages.
    model = base['model']
    assert model['type'] == 'HybridTaskCascade' and 'semantic_head' not in model['roi_head']
    mask_rcnn = _demo('shapes', 'baseline').to_dict()
    demo = mask_rcnn['model']
    assert (model['backbone'], model['neck']) == (demo['backbone'], demo['neck'])
    assert model['rpn_head']['anchor_generator'] == demo['rpn_head']['anchor_generator']
    for extractor in ('bbox_roi_extractor', 'mask_roi_extractor'):
        assert model['roi_head'][extractor]['featmap_strides'] == [8, 16, 32, 64]
    assert [s['sampler']['num'] for s in model['train_cfg']['rcnn']] == [32] * 3
    assert [s['assigner']['pos_iou_thr'] for s in model['train_cfg']['rcnn']] == [0.5, 0.6, 0.7]
    assert model['train_cfg']['rpn_proposal'] == dict(demo['train_cfg']['rpn_proposal'],
                                                      nms=dict(type='nms', iou_threshold=0.7),
                                                      min_bbox_size=0)
    assert model['test_cfg']['rpn'] == demo['test_cfg']['rpn']
    assert model['test_cfg']['rcnn'] == dict(demo['test_cfg']['rcnn'], score_thr=0.001)


def test_boxinst_demo_trains_from_boxes_and_scores_masks():
    base = _framework('boxinst')
    # Trained from boxes (mmdet's BoxInst loads no masks), scored on masks.
    load = [t for t in base['train_dataloader']['dataset']['pipeline']
            if t['type'] == 'LoadAnnotations']
    assert load == [dict(type='LoadAnnotations', with_bbox=True)]
    assert base['model']['data_preprocessor']['type'] == 'BoxInstDataPreprocessor'
    # The pairwise term's ramp: mmdet's 10k of 90k iterations, scaled.
    assert base['model']['mask_head']['warmup_iters'] == base['max_iters'] // 9 == 50
    assert base['val_evaluator']['metric'] == ['bbox', 'segm']
    assert base['model']['test_cfg']['max_per_img'] == 20


def test_reppoints_demo_is_a_box_detector_on_the_demo_data():
    base = _framework('reppoints')
    # A box detector: box AP only, no masks loaded.
    assert base['val_evaluator']['metric'] == base['test_evaluator']['metric'] == 'bbox'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for t in base[loader]['dataset']['pipeline']:
            assert not t.get('with_mask', False), loader
    assert base['model']['test_cfg']['max_per_img'] == 20


def _pop_video_warm_start(cfg: dict, ifr_type: str, enabled: bool) -> str:
    """Check and remove an IFR video model's inference-only difference from
    its stock twin: the warm-starting subclass and its ``warm_start`` key;
    return the stock class it derives from."""
    model = cfg['model']
    assert model.pop('type') == ifr_type
    assert model.pop('warm_start') == dict(enabled=enabled)
    (parent, ) = [c.__name__ for c in MODELS.get(ifr_type).__bases__
                  if c.__name__ != 'VideoWarmStartMixin']
    return parent


def test_video_pair_differs_only_in_the_mask_head_and_ifr_runtime():
    path = osp.join(DEMO_DIR, 'masktrack-rcnn_mbv2_fpn_shapes-video_{}.py')
    base = Config.fromfile(path.format('baseline')).to_dict()
    ifr = Config.fromfile(path.format('ifr')).to_dict()
    base_head = base['model']['detector']['roi_head'].pop('mask_head')
    ifr_head = ifr['model']['detector']['roi_head'].pop('mask_head')
    assert (base_head.pop('type'), ifr_head.pop('type')) == ('SmallInitFCNMaskHead',
                                                             'IFRConvFCMaskHead')
    assert base_head == ifr_head
    ifr.pop('custom_hooks')
    # The IFR video model can warm-start each frame (off here; the same weights).
    stock_type = base['model'].pop('type')
    assert _pop_video_warm_start(ifr, 'IFRMaskTrackRCNN', enabled=False) == stock_type
    assert base == ifr
    base['model']['type'] = 'MaskTrackRCNN'
    # The detector is the image demo's Mask R-CNN, inside mmdet's MaskTrackRCNN.
    image = _demo('shapes', 'baseline').to_dict()['model']
    image.pop('data_preprocessor')
    image['roi_head'].pop('mask_head')
    assert base['model']['type'] == 'MaskTrackRCNN' and base['model']['detector'] == image
    assert base['val_evaluator']['type'] == 'NumpyCompatYouTubeVISMetric'
    assert base['train_dataloader']['dataset']['type'] == 'YouTubeVISDataset'


@pytest.mark.parametrize('side', ['baseline', 'ifr'])
def test_video_from_image_starts_each_detector_from_its_own_image_demo_model(side):
    """The from-image video pair is the video pair but for the detector's
    init: the image demo's trained Mask R-CNN of the same head."""
    video = Config.fromfile(osp.join(
        DEMO_DIR, f'masktrack-rcnn_mbv2_fpn_shapes-video_{side}.py')).to_dict()
    cand = Config.fromfile(osp.join(
        DEMO_DIR, f'masktrack-rcnn_mbv2_fpn_shapes-video-from-image_{side}.py')).to_dict()
    init = cand['model']['detector'].pop('init_cfg')
    assert init == dict(
        type='Pretrained', checkpoint=f'work_dirs/demo/mask_rcnn_mbv2_shapes/{side}/iter_450.pth')
    assert 'init_cfg' not in video['model']['detector']
    assert cand == video


def test_warm_train_video_config_is_the_ifr_side_with_a_trained_warm_start():
    path = osp.join(DEMO_DIR, 'masktrack-rcnn_mbv2_fpn_shapes-video-from-image_ifr{}.py')
    ifr = Config.fromfile(path.format('')).to_dict()
    warm = Config.fromfile(path.format('-warm-train')).to_dict()
    assert warm['model'].pop('warm_start') == dict(enabled=True, budget=2, train_loss_weight=1.0)
    assert ifr['model'].pop('warm_start') == dict(enabled=False)
    assert warm == ifr


def test_sipmask_video_pair_differs_only_in_the_box_head_towers_and_ifr_runtime():
    path = osp.join(DEMO_DIR, 'sipmask-vis_mbv2_fpn_shapes-video_{}.py')
    base = Config.fromfile(path.format('baseline')).to_dict()
    ifr = Config.fromfile(path.format('ifr')).to_dict()
    assert (base['model']['detector']['bbox_head'].pop('type'),
            ifr['model']['detector']['bbox_head'].pop('type')) == ('SipMaskHead', 'IFRSipMaskHead')
    ifr.pop('custom_hooks')
    assert _pop_video_warm_start(ifr, 'IFRSipMaskVIS', enabled=True) == base['model']['type']
    ifr['model']['type'] = base['model']['type']
    assert base == ifr
    assert base['model']['track_head']['type'] == 'SipMaskTrackHead'
    # Data, schedule, backbone, tracker and metric are the MaskTrack R-CNN video demo's.
    masktrack = Config.fromfile(osp.join(
        DEMO_DIR, 'masktrack-rcnn_mbv2_fpn_shapes-video_baseline.py')).to_dict()
    for key in ('data_preprocessor', 'tracker'):
        assert base['model'][key] == masktrack['model'][key]
    assert base['model']['detector']['backbone'] == masktrack['model']['detector']['backbone']
    base.pop('model'), masktrack.pop('model')
    assert base == masktrack


def _variant_ifr_cfg(cand, reference):
    """Pop the ``ifr_cfg`` of both configs; the keys of the reference's
    stay as they were in the variant's, and the rest is returned."""
    ref_cfg = reference['model']['roi_head']['mask_head'].pop('ifr_cfg', {})
    cfg = cand['model']['roi_head']['mask_head'].pop('ifr_cfg')
    for key, value in ref_cfg.items():
        assert cfg.pop(key) == value, key
    return cfg


@pytest.mark.parametrize('schedule, variant, ifr_cfg', [
    ('shapes', 'ifr-budget', BUDGET_IFR_CFG),
    ('shapes-2x', 'ifr-budget', BUDGET_IFR_CFG),
    ('shapes', 'ifr-budget-only', dict(budget=2)),
    ('shapes-2x', 'ifr-budget-only', dict(budget=2)),
    ('shapes', 'ifr-budget-init', dict(budget=2, initializer=dict())),
    ('shapes', 'ifr-budget-init-consistency',
     dict(budget=2, initializer=dict(), consistency=dict(weight=1.0))),
])
def test_budget_demos_differ_only_in_the_refiners_budget(schedule, variant, ifr_cfg):
    """The model at the stock model's cost, one key away from the default."""
    ifr, cand = _demo(schedule, 'ifr').to_dict(), _demo(schedule, variant).to_dict()
    assert cand['model']['roi_head']['mask_head'].pop('ifr_cfg') == ifr_cfg
    assert cand == ifr


def test_jacobian_regularised_demo_differs_only_in_jac_reg():
    ifr, jac = _demo('shapes', 'ifr').to_dict(), _demo('shapes', 'ifr-jacreg').to_dict()
    ifr_cfg = _variant_ifr_cfg(jac, ifr)
    assert ifr_cfg == dict(type='IFRRefiner', jac_reg=dict(weight=2.0))
    assert jac == ifr
    assert 'IFRAuxLossHook' in [h['type'] for h in jac['custom_hooks']]


@pytest.mark.parametrize('variant, steps, damping', [('jfb', 1, None), ('phantom', 5, 0.5)])
def test_phantom_gradient_demos_differ_only_in_the_gradient(variant, steps, damping):
    from mmifr.models.layers.ifr_refiner import DEFAULT_SOLVER
    ifr, cand = _demo('shapes', 'ifr').to_dict(), _demo('shapes', f'ifr-{variant}').to_dict()
    ifr_cfg = _variant_ifr_cfg(cand, ifr)
    assert ifr_cfg.pop('type') == 'IFRRefiner'
    solver = ifr_cfg.pop('solver')
    assert ifr_cfg == {}
    assert (solver.pop('grad'), solver.pop('phantom_steps'),
            solver.pop('phantom_damping', None)) == ('phantom', steps, damping)
    # The forward solve is the default one (the backward options do not apply).
    forward = {k: v for k, v in DEFAULT_SOLVER.items() if not k.startswith('backward')}
    assert solver == forward
    assert cand == ifr


def test_torchinit_demo_differs_only_in_the_block_conv_init():
    ifr, cand = _demo('shapes', 'ifr').to_dict(), _demo('shapes', 'ifr-torchinit').to_dict()
    ifr_cfg = _variant_ifr_cfg(cand, ifr)
    assert ifr_cfg == dict(
        type='IFRRefiner', block=dict(type='DoubleResidualBlock', conv_init='pytorch'))
    assert cand == ifr


def test_branch_gain_demo_differs_only_in_the_block_branch_gain():
    ifr, cand = _demo('shapes', 'ifr').to_dict(), _demo('shapes', 'ifr-branch-gain').to_dict()
    ifr_cfg = _variant_ifr_cfg(cand, ifr)
    assert ifr_cfg == dict(
        type='IFRRefiner', block=dict(type='DoubleResidualBlock', branch_gain_init=0.5))
    assert cand == ifr


def test_deq_from_start_demo_differs_only_in_the_warmup_hook():
    ifr = _demo('shapes', 'ifr').to_dict()
    cand = _demo('shapes', 'ifr-deq-from-start').to_dict()
    hooks = ifr.pop('custom_hooks')
    assert [h for h in hooks if h['type'] != 'IFRUnrollWarmupHook'] == cand.pop('custom_hooks')
    assert cand == ifr


def test_late_switch_demo_differs_only_in_the_switch_ratio():
    ifr = _demo('shapes', 'ifr').to_dict()
    cand = _demo('shapes', 'ifr-late-switch').to_dict()
    hooks, cand_hooks = ifr.pop('custom_hooks'), cand.pop('custom_hooks')
    assert [h['type'] for h in hooks] == [h['type'] for h in cand_hooks]
    (warmup, ) = [h for h in cand_hooks if h['type'] == 'IFRUnrollWarmupHook']
    assert warmup['switch_ratio'] == 7 / 9
    assert [h for h in hooks if h['type'] != 'IFRUnrollWarmupHook'] == \
        [h for h in cand_hooks if h['type'] != 'IFRUnrollWarmupHook']
    assert cand == ifr


def test_jacobian_dose_demo_differs_only_in_jac_reg():
    ifr, jac = _demo('shapes', 'ifr').to_dict(), _demo('shapes', 'ifr-jacreg-dose').to_dict()
    assert _variant_ifr_cfg(jac, ifr) == dict(
        jac_reg=dict(weight=2.0, freq=0.2, ramp_ratio=0.2, end_ratio=0.8))
    assert jac == ifr


def test_budget_deq_end_demo_differs_only_in_the_warmup_and_the_test_solve():
    """2 unrolled evaluations for 3/4 of training, the solve for the rest,
    tested at 2 evaluations: the default's hooks otherwise."""
    ifr = _demo('shapes', 'ifr').to_dict()
    cand = _demo('shapes', 'ifr-budget-deq-end').to_dict()
    assert _variant_ifr_cfg(cand, ifr) == dict(test_solver=dict(solver='unroll', max_iter=2))
    hooks, cand_hooks = ifr.pop('custom_hooks'), cand.pop('custom_hooks')
    assert [h['type'] for h in hooks] == [h['type'] for h in cand_hooks]
    (warmup, ) = [h for h in cand_hooks if h['type'] == 'IFRUnrollWarmupHook']
    assert warmup == dict(type='IFRUnrollWarmupHook', switch_ratio=3 / 4, unroll_steps=2)
    assert [h for h in hooks if h['type'] != 'IFRUnrollWarmupHook'] == \
        [h for h in cand_hooks if h['type'] != 'IFRUnrollWarmupHook']
    assert cand == ifr


def test_released_shared_block_demo_unrolls_the_ifr_block_throughout():
    """Table 1's 4* as the released code has it: the IFR model with 4
    weight-shared block applications and no DEQ phase."""
    ifr, cand = _demo('shapes', 'ifr').to_dict(), _demo('shapes', 'ifr-unroll').to_dict()
    assert _variant_ifr_cfg(cand, ifr) == dict(mode='unroll')
    assert [h['type'] for h in cand.pop('custom_hooks')] == ['IFRSolverStatsHook']
    ifr.pop('custom_hooks')
    assert cand == ifr
    head = MODELS.build(_demo('shapes', 'ifr-unroll').model.roi_head.mask_head)
    (refiner, ) = find_refiners(head).values()
    assert (refiner.mode, refiner.num_steps, refiner.effective_mode) == ('unroll', 4, 'unroll')


def test_shared_convs_demo_differs_from_the_baseline_only_in_the_head_type():
    base = _demo('shapes', 'baseline').to_dict()
    shared = _demo('shapes', 'shared-convs').to_dict()
    assert shared['model']['roi_head']['mask_head'].pop('type') == 'WeightSharedFCNMaskHead'
    assert base['model']['roi_head']['mask_head'].pop('type') == 'SmallInitFCNMaskHead'
    assert shared == base


#: The demo pairs of the frameworks trained from the paper's tables 2-5 besides
#: the ones above: per config prefix, the heads (dotted path in the model) whose
#: type the IFR side swaps, as (stock type, IFR type).
FRAMEWORK_PAIRS = {
    'cascade-mask-rcnn': {'roi_head.mask_head': ('SmallInitFCNMaskHead', 'IFRConvFCMaskHead')},
    'ms-rcnn': {'roi_head.mask_head': ('SmallInitFCNMaskHead', 'IFRConvFCMaskHead')},
    'htc': {f'roi_head.mask_head.{i}': ('SmallInitHTCMaskHead', 'IFRHTCMaskHead')
            for i in range(3)},
    'solo': {'mask_head': ('SOLOHead', 'IFRSOLOHead')},
    'solov2': {'mask_head': ('SOLOV2Head', 'IFRSOLOV2Head')},
    'condinst': {'mask_head': ('CondInstMaskHead', 'IFRCondInstMaskHead')},
    'boxinst': {'mask_head': ('BoxInstMaskHead', 'IFRBoxInstMaskHead')},
    'retinanet': {'bbox_head': ('SmallInitRetinaHead', 'IFRRetinaHead')},
    'freeanchor': {'bbox_head': ('SmallInitFreeAnchorRetinaHead', 'IFRFreeAnchorRetinaHead')},
    'fcos': {'bbox_head': ('FCOSHead', 'IFRFCOSHead')},
    'reppoints': {'bbox_head': ('RepPointsHead', 'IFRRepPointsHead')},
}


#: The pairs that use the backbone's stride-4 output besides the demo's three.
STRIDE_4_PAIRS = ('solo', 'solov2')
#: The box-only detectors: scored by box AP.
BOX_ONLY_PAIRS = ('retinanet', 'freeanchor', 'fcos', 'reppoints')


def _pop_type(model: dict, path: str) -> str:
    node = model
    for key in path.split('.'):
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node.pop('type')


@pytest.mark.parametrize('prefix', sorted(FRAMEWORK_PAIRS))
def test_framework_pair_differs_only_in_the_towers_and_ifr_runtime(prefix):
    base, ifr = _framework(prefix), _framework(prefix, 'ifr')
    for head, types in FRAMEWORK_PAIRS[prefix].items():
        assert (_pop_type(base['model'], head), _pop_type(ifr['model'], head)) == types, head
    assert [h['type'] for h in ifr.pop('custom_hooks')] == [
        'IFRSolverStatsHook', 'IFRUnrollWarmupHook', 'IFRAuxLossHook'
    ]
    assert base == ifr
    # Data, backbone, schedule and runtime are the demo Mask R-CNN's (the
    # evaluator scores boxes only where the framework predicts no masks).
    mask_rcnn = _demo('shapes', 'baseline').to_dict()
    model, mask_rcnn_model = base.pop('model'), mask_rcnn.pop('model')
    backbone = dict(mask_rcnn_model['backbone'], _delete_=True)
    if prefix in STRIDE_4_PAIRS:
        # mmdet's SOLO heads place their grid on a stride-4 level: the
        # backbone's stride-4 output is added, nothing else changes.
        backbone['out_indices'] = (1, 2, 4, 6)
        assert model['neck']['in_channels'] == [24, 32, 96, 320]
    assert dict(model['backbone'], _delete_=True) == backbone
    for cfg in (base, mask_rcnn):
        for key in ('val_evaluator', 'test_evaluator'):
            cfg[key].pop('metric')
        # Which annotations a framework loads is its own (BoxInst: boxes only).
        for key in ('train_pipeline', 'test_pipeline'):
            cfg.pop(key)
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[loader]['dataset'].pop('pipeline')
    assert {k: base[k] for k in mask_rcnn} == mask_rcnn


@pytest.mark.parametrize('prefix', sorted(FRAMEWORK_PAIRS))
def test_framework_pair_has_a_rows_file(prefix):
    key = prefix.replace('-', '_')
    rows = Config.fromfile(osp.join(DEMO_DIR, f'rows_shapes_{key}.yml'))['rows']
    (row, ) = rows
    assert row['baseline']['config'] == f'configs/ifr/demo/{prefix}_mbv2_fpn_shapes_baseline.py'
    assert row['ifr']['config'] == f'configs/ifr/demo/{prefix}_mbv2_fpn_shapes_ifr.py'
    metric = _framework(prefix)['val_evaluator']['metric']
    if prefix in BOX_ONLY_PAIRS:
        assert row['metric'] == metric == 'bbox'
    else:
        assert row['metric'] == 'segm' and 'segm' in metric


#: The pairs whose stock towers start from Kaiming init instead of mmdet's N(0, 0.01).
KAIMING_TOWER_PAIRS = ('retinanet', 'freeanchor')


def _build_head(prefix: str,
                side: str,
                mmdet_init: bool = False,
                key: str = 'bbox_head') -> torch.nn.Module:
    """The initialised head ``model.<key>`` of a demo config (``mmdet_init``:
    without the config's ``init_cfg``, so with the mmdet class's own)."""
    cfg = Config.fromfile(osp.join(DEMO_DIR, f'{prefix}_mbv2_fpn_shapes_{side}.py'))
    head_cfg = cfg.model[key]
    if mmdet_init:
        head_cfg.pop('init_cfg')
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    head.init_weights()
    return head


@pytest.mark.parametrize('prefix', KAIMING_TOWER_PAIRS)
def test_stock_towers_start_kaiming_and_the_ifr_side_is_unchanged(prefix):
    stock, mmdet_init = _build_head(prefix, 'baseline'), _build_head(prefix, 'baseline', True)
    fan_out_std = (2 / (128 * 9))**0.5
    for tower in (stock.cls_convs, stock.reg_convs):
        for conv in tower:
            assert conv.conv.weight.std().item() == pytest.approx(fan_out_std, rel=0.05)
    assert mmdet_init.cls_convs[0].conv.weight.std().item() == pytest.approx(0.01, rel=0.05)
    # The focal-loss prior bias and the predictor init stay as before.
    for head in (stock, mmdet_init):
        assert torch.allclose(head.retina_cls.bias, torch.full_like(head.retina_cls.bias, -4.595),
                              atol=1e-3)
        assert head.retina_reg.weight.std().item() == pytest.approx(0.001, rel=0.05)
    # The IFR side inherits the init_cfg; its initial weights are bit-identical.
    ifr, ifr_mmdet_init = _build_head(prefix, 'ifr'), _build_head(prefix, 'ifr', True)
    before, after = ifr_mmdet_init.state_dict(), ifr.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_mmdet_init_variant_is_the_stock_side_with_retinaheads_own_init():
    from mmdet.models import RetinaHead
    variant = _framework('retinanet', 'baseline-mmdet-init')
    stock = _framework('retinanet')
    init_cfg = variant['model']['bbox_head'].pop('init_cfg')
    stock['model']['bbox_head'].pop('init_cfg')
    assert variant == stock
    default = inspect.signature(RetinaHead.__init__).parameters['init_cfg'].default
    assert init_cfg == default


#: Stock heads without norm layers whose rows have a "stock + GN head" control.
GN_HEAD_CONTROLS = ('retinanet', 'freeanchor')


@pytest.mark.parametrize('prefix', GN_HEAD_CONTROLS)
def test_gn_head_control_differs_from_the_stock_side_in_the_towers_norm_only(prefix):
    stock = _framework(prefix)
    control = _framework(prefix, 'baseline-gn-head')
    norm_cfg = control['model']['bbox_head'].pop('norm_cfg')
    assert norm_cfg == dict(type='GN', num_groups=32, requires_grad=True)
    assert stock['model']['bbox_head'].get('norm_cfg') is None
    stock['model']['bbox_head'].pop('norm_cfg', None)
    assert control == stock
    head = _build_head(prefix, 'baseline-gn-head')
    for tower in (head.cls_convs, head.reg_convs):
        assert len(tower) == 4
        assert all(isinstance(conv.gn, torch.nn.GroupNorm) and conv.conv.bias is None
                   for conv in tower)
    rows = Config.fromfile(osp.join(DEMO_DIR, f'rows_shapes_{prefix}_gn_head.yml'))['rows']
    assert [(r['baseline']['config'], 'ifr' in r) for r in rows] == [
        (f'configs/ifr/demo/{prefix}_mbv2_fpn_shapes_baseline-gn-head.py', False)]


#: Diagnostic variants of stock GroupNorm towers started from Kaiming init.
KAIMING_TOWER_VARIANTS = {'solo': ('mask_convs', 'cls_convs', 'conv_mask_list'),
                          'solov2': ('kernel_convs', 'cls_convs', 'conv_kernel')}


@pytest.mark.parametrize('prefix', sorted(KAIMING_TOWER_VARIANTS))
def test_kaiming_towers_variant_changes_the_stock_towers_init_only(prefix):
    stock = _framework(prefix)
    variant = _framework(prefix, 'baseline-kaiming-towers')
    variant['model']['mask_head'].pop('init_cfg')
    stock['model']['mask_head'].pop('init_cfg', None)
    assert variant == stock
    *towers, predictor = KAIMING_TOWER_VARIANTS[prefix]
    mmdet_init, kaiming = (_build_head(prefix, s, key='mask_head')
                           for s in ('baseline', 'baseline-kaiming-towers'))
    fan_out_std = (2 / (128 * 9))**0.5
    for name in towers:
        for conv in getattr(kaiming, name):
            assert conv.conv.weight.std().item() == pytest.approx(fan_out_std, rel=0.05)
        assert getattr(mmdet_init, name)[0].conv.weight.std().item() == pytest.approx(
            0.01, rel=0.05)
    # The predictors keep mmdet's init, the classifier its focal prior.
    for head in (mmdet_init, kaiming):
        preds = getattr(head, predictor)
        for conv in (preds if isinstance(preds, torch.nn.ModuleList) else [preds]):
            assert conv.weight.std().item() == pytest.approx(0.01, rel=0.05)
        assert torch.allclose(head.conv_cls.bias, torch.full_like(head.conv_cls.bias, -4.595),
                              atol=1e-3)


def test_kaiming_head_variant_adds_the_mask_feature_branch_only():
    towers = _framework('solov2', 'baseline-kaiming-towers')
    variant = _framework('solov2', 'baseline-kaiming-head')
    init_cfg = variant['model']['mask_head']['mask_feature_head'].pop('init_cfg')
    assert variant == towers
    assert init_cfg['type'] == 'Kaiming'
    head = _build_head('solov2', 'baseline-kaiming-head', key='mask_head')
    for name, conv in head.mask_feature_head.named_modules():
        if isinstance(conv, torch.nn.Conv2d):
            fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
            assert conv.weight.std().item() == pytest.approx((2 / fan_out)**0.5, rel=0.1), name


@pytest.mark.parametrize('variant,factor', [('grids-half', 2), ('grids-quarter', 4)])
def test_solo_grid_variants_divide_the_stock_grids_only(variant, factor):
    stock = _framework('solo')
    grids = _framework('solo', f'baseline-{variant}')
    num_grids = grids['model']['mask_head'].pop('num_grids')
    assert [g * factor for g in num_grids] == stock['model']['mask_head'].pop('num_grids')
    assert grids == stock


def test_every_demo_config_is_covered():
    names = {osp.basename(p) for p in glob.glob(osp.join(DEMO_DIR, '*.py'))}
    frameworks = ('bmask-rcnn', 'meinst', 'blendmask') + tuple(FRAMEWORK_PAIRS)
    variants = ('budget', 'budget-only', 'budget-init', 'budget-init-consistency',
                'budget-deq-end', 'jacreg', 'jacreg-dose', 'jfb',
                'phantom', 'torchinit', 'deq-from-start', 'late-switch', 'branch-gain', 'unroll')
    assert names == {f'mask-rcnn_mbv2_fpn_{p}_{s}.py' for p in PAIRS
                     for s in ('baseline', 'ifr')} | {
                         f'mask-rcnn_mbv2_fpn_shapes_ifr-{v}.py' for v in variants} | {
                             'mask-rcnn_mbv2_fpn_shapes_shared-convs.py',
                             'mask-rcnn_mbv2_fpn_shapes-2x_ifr-budget.py',
                             'mask-rcnn_mbv2_fpn_shapes-2x_ifr-budget-only.py'} | {
                                 f'{m}_mbv2_fpn_shapes_{s}.py' for m in frameworks
                                 for s in ('baseline', 'ifr')} | {
                                     f'{m}_mbv2_fpn_shapes-3x_{s}.py'
                                     for m in ('meinst', 'retinanet', 'solo')
                                     for s in ('baseline', 'ifr')} | {
                                     f'condinst_mbv2_fpn_shapes-2x_{s}.py'
                                     for s in ('baseline', 'ifr')} | {
                                     f'{m}_mbv2_fpn_shapes-video_{s}.py'
                                     for m in ('masktrack-rcnn', 'sipmask-vis')
                                     for s in ('baseline', 'ifr')} | {
                                     f'masktrack-rcnn_mbv2_fpn_shapes-video-from-image_{s}.py'
                                     for s in ('baseline', 'ifr', 'ifr-warm-train')} | {
                                     # Controls (test_gn_head_control_...).
                                     f'{m}_mbv2_fpn_shapes_baseline-gn-head.py'
                                     for m in GN_HEAD_CONTROLS} | {
                                     'retinanet_mbv2_fpn_shapes_baseline-mmdet-init.py'} | {
                                     f'{m}_mbv2_fpn_shapes_baseline-kaiming-towers.py'
                                     for m in KAIMING_TOWER_VARIANTS} | {
                                     'solov2_mbv2_fpn_shapes_baseline-kaiming-head.py',
                                     'solo_mbv2_fpn_shapes_baseline-grids-half.py',
                                     'solo_mbv2_fpn_shapes_baseline-grids-quarter.py'} | {
                                     # Named variants (test_ifr_placement.py).
                                     f'{m}_mbv2_fpn_shapes{s}_ifr-all-towers.py'
                                     for m, s in (('meinst', '-3x'), ('blendmask', ''),
                                                  ('solo', ''), ('solov2', ''))}
