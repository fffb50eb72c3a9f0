"""The model-zoo benchmark's in-process measurements of one trained model:
the parameters of the head IFR replaces, the inference time per image (per
frame for video models) and the solver steps per solved sample
(``tools/benchmark_model_zoo.py``)."""
import time
from functools import partial
from typing import Callable, List, Optional, Tuple

import torch
from mmengine.config import Config


def replaced_head(model: torch.nn.Module) -> torch.nn.Module:
    """The head IFR replaces: the mask head of two-stage / one-stage instance
    segmenters, else the box head of detectors."""
    model = getattr(model, 'detector', model)
    roi_head = getattr(model, 'roi_head', None)
    for head in (getattr(roi_head, 'mask_head', None), getattr(model, 'mask_head', None)):
        if head is not None:
            return head
    return model.bbox_head


Runs = Tuple[List[Callable[[], object]], int]


def _image_runs(model, dataset, num_images: int) -> Runs:
    """One inference call per image (the first is the warm-up), 1 image each."""
    from mmdet.apis import inference_detector
    n = min(num_images + 1, len(dataset))
    paths = [dataset.get_data_info(i)['img_path'] for i in range(n)]
    return [partial(inference_detector, model, path) for path in paths], 1


def _clip_runs(model, dataset, num_images: int) -> Runs:
    """Calls of ``test_step`` on the first clip (the first is the warm-up),
    as many as make ``num_images`` frames, and the frames of a call; each
    call resets the tracker at frame 0, as the test loop does."""
    from mmengine.dataset import pseudo_collate
    if not len(dataset):
        return [], 0
    data = pseudo_collate([dataset[0]])
    frames = len(data['data_samples'][0])
    return [partial(model.test_step, data)] * (1 + max(1, round(num_images / frames))), frames


def measure(config: str, checkpoint: Optional[str], options: dict, device: str,
            num_images: int) -> dict:
    """Head parameters, inference time per image (per frame for video
    models) and solver steps."""
    from mmengine.registry import init_default_scope

    from mmdet.apis import init_detector, init_track_model
    from mmdet.registry import DATASETS

    from mmifr.engine.hooks import find_refiners

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    # Video models (MaskTrack R-CNN, SipMaskVIS) wrap a detector and run on clips.
    video = 'detector' in cfg.model
    # init_detector sets mmdet's scope itself, init_track_model does not.
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = (init_track_model if video else init_detector)(cfg, checkpoint, device=device)
    head_params = sum(p.numel() for p in replaced_head(model).parameters())
    # The training seed of the config (one run of each model is one seed).
    out = dict(head_params=head_params, seed=cfg.get('randomness', {}).get('seed'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    runs, frames = (_clip_runs if video else _image_runs)(model, dataset, num_images)
    if len(runs) < 2:
        return out
    refiners = find_refiners(model).values()
    runs[0]()  # warm-up: allocator, lazy inits
    for refiner in refiners:
        refiner.pop_stats()
    started = time.perf_counter()
    for run in runs[1:]:
        run()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    out['infer_ms'] = 1000 * (time.perf_counter() - started) / ((len(runs) - 1) * frames)
    steps = torch.cat([s.forward.nstep for r in refiners for s in r.pop_stats()] or
                      [torch.zeros(0)])
    if steps.numel():
        # Mean over solved samples (RoIs or images), not over calls.
        out['solver_steps'] = steps.float().mean().item()
    return out
