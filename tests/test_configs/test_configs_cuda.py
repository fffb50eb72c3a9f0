"""The project's Mask R-CNN configs on CUDA: training, ``inference_detector``, checkpoints.

The demo model (``configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py``) and the paper's
R-50 model (``configs/ifr/mask_rcnn_r50_ifr_1x.py``) train two iterations with mmengine's
Runner on a few generated shapes images (the first unrolled, the second the DEQ solve with
its implicit backward), save a checkpoint on the GPU, infer with mmdet's
``inference_detector`` on the GPU, and the checkpoint loads and infers on the CPU. Nothing is
downloaded: the backbones start from random weights (no ``init_cfg``), the data is made by
``tools/dataset_converters/make_shapes_dataset.py``. The demo also trains in fp16 with
``DeviceAmpOptimWrapper``.
"""
import math
import os.path as osp

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tool_runs import load_tool

from mmifr.engine.hooks import find_refiners

pytestmark = pytest.mark.cuda

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = 'configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py'
R50 = 'configs/ifr/mask_rcnn_r50_ifr_1x.py'
#: Detections per image forced at inference, so that the IFR mask head runs
#: on many RoIs even for a model that has trained two iterations.
DETS = 50


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    """4 training and 2 validation images of the demo's shapes data (320x320)."""
    tool = load_tool('tools/dataset_converters/make_shapes_dataset.py')
    root = str(tmp_path_factory.mktemp('shapes'))
    tool.main(['--out', root, '--num-train', '4', '--num-val', '2', '--seed', '0'])
    return dict(root=root, classes=tool.CLASSES)


def _training_config(config: str, shapes: dict, work_dir: str, amp: str = None) -> Config:
    """``config`` shrunk to 2 iterations on ``shapes``: unrolled, then the DEQ solve."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    cfg.work_dir = work_dir
    cfg.model.backbone.init_cfg = None  # nothing can be downloaded
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False, batch_size=2)
    cfg.train_dataloader.dataset.update(
        data_root=osp.join(shapes['root'], ''),
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes=shapes['classes']))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg[key] = None
    # Kept for inference_detector, which takes the test pipeline and the
    # class names from it; the Runner is given none of it (see _train).
    cfg.test_dataloader.dataset.update(
        data_root=osp.join(shapes['root'], ''),
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        metainfo=dict(classes=shapes['classes']))
    cfg.test_evaluator = dict(
        type='CocoMetric', ann_file=osp.join(shapes['root'], 'annotations/instances_val.json'))
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
    cfg.log_processor = dict(type='LogProcessor', window_size=1, by_epoch=False)
    for hook in cfg.custom_hooks:
        if hook.type == 'IFRUnrollWarmupHook':
            hook.switch_iter = 1
    if amp:
        cfg.optim_wrapper.type = 'DeviceAmpOptimWrapper'
        cfg.optim_wrapper.dtype = amp
    cfg.randomness = dict(seed=0)
    return cfg


def _train(config: str, shapes: dict, work_dir: str, device: torch.device,
           amp: str = None) -> dict:
    """Train, and return what the tests check (the Runner is released)."""
    cfg = _training_config(config, shapes, work_dir, amp)
    for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    # The loss of every iteration (the history's values).
    losses = [float(v) for v in runner.message_hub.get_scalar('train/loss').data[0]]
    refiners = list(find_refiners(model).values())
    stats = refiners[0].deq.last_stats
    facts = dict(
        devices={p.device.type for p in model.parameters()},
        losses=losses,
        num_refiners=len(refiners),
        last_phase=refiners[0].effective_mode,
        stats_device=stats.forward.nstep.device.type,
        has_backward=stats.backward is not None,
        bwd_steps=float(stats.backward.nstep.float().mean()) if stats.backward else None,
        optim_wrapper=type(runner.optim_wrapper).__name__,
        checkpoint=osp.join(work_dir, 'iter_2.pth'),
        state={k: v.detach().cpu() for k, v in model.state_dict().items()})
    del runner, model, refiners
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return facts


@pytest.fixture(scope='module', params=[DEMO, R50], ids=['demo', 'r50'])
def trained(request, shapes, tmp_path_factory, cuda_device):
    config, device = request.param, cuda_device
    work_dir = str(tmp_path_factory.mktemp(osp.basename(config)[:-3]))
    config_file = osp.join(work_dir, 'config.py')
    _training_config(config, shapes, work_dir).dump(config_file)
    return dict(_train(config, shapes, work_dir, device), config=config,
                config_file=config_file, device=device)


def test_two_training_iterations_on_the_gpu(trained):
    assert trained['devices'] == {trained['device'].type}
    assert trained['num_refiners'] == 1
    # The second iteration ran the DEQ solve on the GPU, backward included.
    assert trained['last_phase'] == 'deq'
    assert trained['stats_device'] == trained['device'].type
    assert trained['has_backward'] and trained['bwd_steps'] >= 1
    assert len(trained['losses']) == 2 and all(math.isfinite(v) for v in trained['losses'])


def test_checkpoint_saved_on_the_gpu_loads_on_the_cpu(trained):
    # weights_only (torch's default since 2.6): the Runner's checkpoint holds
    # mmengine objects that `import mmifr` allow-lists (mmifr/utils/checkpoint.py).
    ckpt = torch.load(trained['checkpoint'], map_location='cpu', weights_only=True)
    assert {'state_dict', 'message_hub', 'optimizer', 'meta'} <= set(ckpt)
    assert all(v.device.type == 'cpu' for v in ckpt['state_dict'].values())
    for name, value in trained['state'].items():
        torch.testing.assert_close(ckpt['state_dict'][name], value, rtol=0, atol=0)


@pytest.mark.parametrize('where', ['gpu', 'cpu'])
def test_inference_detector(trained, shapes, where):
    from mmdet.apis import inference_detector, init_detector
    device = trained['device'] if where == 'gpu' else torch.device('cpu')
    options = {'model.test_cfg.rcnn.score_thr': 0.0, 'model.test_cfg.rcnn.max_per_img': DETS}
    model = init_detector(trained['config_file'], trained['checkpoint'], device=str(device),
                          cfg_options=options)
    assert {p.device.type for p in model.parameters()} == {device.type}
    image = cv2.imread(osp.join(shapes['root'], 'val', '000000.jpg'))
    result = inference_detector(model, image)
    pred = result.pred_instances
    assert 0 < len(pred) <= DETS
    assert pred.masks.shape[1:] == image.shape[:2]
    assert len(pred.masks) == len(pred.bboxes) == len(pred.scores) == len(pred.labels)
    assert int(pred.labels.max()) < model.roi_head.bbox_head.num_classes
    refiner, = find_refiners(model).values()
    stats = refiner.pop_stats()
    # The IFR head refined every detection's RoI features, on this device.
    assert stats and stats[-1].forward.nstep.device.type == device.type
    assert stats[-1].forward.batch_size == len(pred)


def test_demo_trains_in_fp16_with_the_device_amp_wrapper(shapes, real_cuda, tmp_path):
    facts = _train(DEMO, shapes, str(tmp_path), real_cuda, amp='float16')
    assert facts['optim_wrapper'] == 'DeviceAmpOptimWrapper'
    assert facts['last_phase'] == 'deq' and facts['has_backward']
    assert all(math.isfinite(v) for v in facts['losses'])
