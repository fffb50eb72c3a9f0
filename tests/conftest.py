"""Shared pytest fixtures and helpers for the mmifr test-suite.

The main export is :func:`make_tiny_coco`, which writes a few-image,
COCO-format instance-segmentation dataset (rectangles and triangles drawn on
noise) so that end-to-end tests can train and evaluate real mmdet pipelines
without downloading anything. It lives here, not in ``tools/``, because it is
a test utility: deterministic, tiny and with no command-line interface.

Usage from any test module (fixtures need no import; ``tests/`` is not a
package, so ``from conftest import ...`` is avoided on purpose)::

    def test_something(tiny_coco):            # default 4 images, 64x64
        cfg.train_dataloader.dataset.data_root = tiny_coco['data_root']

    def test_other(tmp_path, tiny_coco_factory):  # custom size / splits
        train = tiny_coco_factory(str(tmp_path), num_images=2, size=(96, 128))
        val = tiny_coco_factory(str(tmp_path), split='val', seed=1)

The end-to-end tests of ``tools/`` and of training share the fixtures below
them (tiny configs, tool runs, probe modules); their code lives in
``tests/helpers/`` (on ``sys.path`` through ``setup.cfg``'s ``pythonpath``).
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence, Tuple, Union

import cv2
import numpy as np
import pytest
import torch
from tiny_configs import write_tiny_ifr_config, write_tiny_mask_rcnn_config
from tool_runs import ENGINE_PROBE_MODULE, PROBE_MODULE, run_tool, run_tool_unchecked

#: Class names of the tiny dataset, in category-id order (ids start at 1).
TINY_COCO_CLASSES = ('rectangle', 'triangle')


def _random_shape(rng: np.random.Generator, label: int, height: int, width: int) -> np.ndarray:
    """Sample one shape as an (N, 2) float polygon of (x, y) vertices.

    Shapes are kept at least 1/4 of the image side large so that they survive
    mmdet's ``min_size`` filters and give the RPN something to match.
    """
    min_side = max(4, min(height, width) // 4)
    box_w = int(rng.integers(min_side, max(min_side + 1, width // 2 + 1)))
    box_h = int(rng.integers(min_side, max(min_side + 1, height // 2 + 1)))
    x0 = int(rng.integers(0, width - box_w))
    y0 = int(rng.integers(0, height - box_h))
    x1, y1 = x0 + box_w - 1, y0 + box_h - 1
    if TINY_COCO_CLASSES[label] == 'rectangle':
        pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    else:
        # An isosceles triangle spanning the whole box, so that the polygon's
        # bounding box equals the sampled box.
        pts = [((x0 + x1) // 2, y0), (x1, y1), (x0, y1)]
    return np.asarray(pts, dtype=np.float64)


def make_tiny_coco(root: str,
                   num_images: int = 4,
                   size: Union[int, Tuple[int, int]] = (64, 64),
                   max_objects: int = 3,
                   split: str = 'train',
                   seed: int = 0) -> Dict[str, Union[str, Sequence[str]]]:
    """Write a tiny COCO-format instance-segmentation dataset under ``root``.

    Every image gets 1..``max_objects`` filled rectangles / triangles in random
    colours on a noisy background; each object has a polygon ``segmentation``,
    an ``xywh`` ``bbox`` and its polygon ``area``. Layout::

        root/
          annotations/instances_{split}.json
          {split}/000000.png ...

    Calling it again with another ``split`` adds a second split next to the
    first one. The output depends only on the arguments (seeded RNG).

    Args:
        root (str): Dataset root directory (created if missing).
        num_images (int): Number of images. Defaults to 4.
        size (int | tuple[int, int]): Image size as ``(height, width)``, or a
            single int for square images. Defaults to (64, 64).
        max_objects (int): Maximum number of objects per image. Defaults to 3.
        split (str): Split name, used for the image folder and the annotation
            file name. Defaults to 'train'.
        seed (int): Seed of the random generator. Defaults to 0.

    Returns:
        dict: Paths and metadata, ready to be dropped into an mmdet config:

        - ``data_root`` (str): ``root`` with a trailing separator.
        - ``ann_file`` (str): Annotation file relative to ``data_root``.
        - ``img_prefix`` (str): Image folder relative to ``data_root``, with a
          trailing separator (mmdet's ``data_prefix=dict(img=...)``).
        - ``ann_path`` (str): Absolute annotation file path (for
          ``CocoMetric.ann_file``).
        - ``img_dir`` (str): Absolute image folder path.
        - ``classes`` (tuple[str]): Class names (``metainfo=dict(classes=...)``).
    """
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    img_dir = osp.join(root, split)
    ann_dir = osp.join(root, 'annotations')
    for d in (img_dir, ann_dir):
        # exist_ok: several splits share one root.
        os.makedirs(d, exist_ok=True)

    images, annotations = [], []
    ann_id = 1
    for img_id in range(1, num_images + 1):
        img = rng.integers(0, 64, size=(height, width, 3), dtype=np.uint8)
        file_name = f'{img_id:06d}.png'
        for _ in range(int(rng.integers(1, max_objects + 1))):
            label = int(rng.integers(0, len(TINY_COCO_CLASSES)))
            poly = _random_shape(rng, label, height, width)
            color = tuple(int(c) for c in rng.integers(96, 256, size=3))
            cv2.fillPoly(img, [poly.astype(np.int32)], color)
            x0, y0 = poly.min(axis=0)
            x1, y1 = poly.max(axis=0)
            annotations.append(
                dict(
                    id=ann_id,
                    image_id=img_id,
                    category_id=label + 1,
                    segmentation=[poly.flatten().tolist()],
                    area=float(cv2.contourArea(poly.astype(np.float32))),
                    # COCO boxes are xywh with an inclusive-pixel convention
                    # (+1), matching how the polygon was rasterised.
                    bbox=[float(x0), float(y0),
                          float(x1 - x0 + 1),
                          float(y1 - y0 + 1)],
                    iscrowd=0))
            ann_id += 1
        # PNG keeps pixels exact, so masks and images agree bit for bit.
        cv2.imwrite(osp.join(img_dir, file_name), img)
        images.append(dict(id=img_id, file_name=file_name, height=height, width=width))

    categories = [
        dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(TINY_COCO_CLASSES)
    ]
    ann_file = osp.join('annotations', f'instances_{split}.json')
    with open(osp.join(root, ann_file), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)

    return dict(
        data_root=osp.join(root, ''),
        ann_file=ann_file,
        img_prefix=osp.join(split, ''),
        ann_path=osp.join(root, ann_file),
        img_dir=img_dir,
        classes=TINY_COCO_CLASSES)


#: With this set to 1 (``tools/device/run_gpu_checks.py`` does on the GPU machine), a test
#: marked ``cuda`` fails instead of skipping when torch sees no GPU: a broken CUDA set-up
#: must not pass as "all skipped".
REQUIRE_CUDA_ENV = 'MMIFR_REQUIRE_CUDA'


#: ``MMIFR_CUDA_TESTS_ON=cpu`` runs the tests marked ``cuda`` on the CPU instead of skipping
#: them: a rehearsal of their code where there is no GPU (their CPU-vs-CUDA comparisons become
#: CPU vs CPU; what only CUDA has, e.g. its memory statistics or fp16 loss scaling, skips).
CUDA_TESTS_ON_ENV = 'MMIFR_CUDA_TESTS_ON'


def cuda_tests_device() -> torch.device:
    """The device the tests marked ``cuda`` run on (see :data:`CUDA_TESTS_ON_ENV`)."""
    return torch.device(os.environ.get(CUDA_TESTS_ON_ENV, 'cuda'))


def pytest_runtest_setup(item):
    """Skip the tests marked ``cuda`` where torch sees no GPU (see :data:`REQUIRE_CUDA_ENV`)."""
    if item.get_closest_marker('cuda') is None or torch.cuda.is_available():
        return
    if cuda_tests_device().type == 'cpu':
        return
    if os.environ.get(REQUIRE_CUDA_ENV) == '1':
        pytest.fail(f'{REQUIRE_CUDA_ENV}=1 but torch sees no CUDA GPU (torch {torch.__version__}, '
                    f'built for CUDA {torch.version.cuda})', pytrace=False)
    pytest.skip('needs a CUDA GPU')


@pytest.fixture(scope='session')
def cuda_device() -> torch.device:
    """The device of the tests marked ``cuda``: ``cuda``, or the CPU in a rehearsal."""
    return cuda_tests_device()


@pytest.fixture
def real_cuda(cuda_device) -> torch.device:
    """``cuda_device`` for checks only CUDA has (skipped in a CPU rehearsal)."""
    if cuda_device.type != 'cuda':
        pytest.skip(f'checks what only CUDA has ({CUDA_TESTS_ON_ENV}={cuda_device.type})')
    return cuda_device


@pytest.fixture
def exact_cuda_math():
    """CUDA convs and matmuls in full fp32 (no TF32) for the duration of a test.

    cuDNN runs fp32 convs in TF32 by default (10-bit mantissa), which alone
    would keep a CUDA result ~1e-3 away from the CPU's; the CPU-vs-CUDA tests
    compare the arithmetic, not that rounding.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture
def tiny_coco(tmp_path):
    """A 4-image, 64x64 ``train`` split of :func:`make_tiny_coco`."""
    return make_tiny_coco(str(tmp_path / 'tiny_coco'))


@pytest.fixture(scope='session')
def tiny_coco_factory():
    """The :func:`make_tiny_coco` function itself, for custom datasets."""
    return make_tiny_coco


@pytest.fixture(scope='session', autouse=True)
def single_intra_op_thread():
    """One intra-op torch thread for the in-process tests.

    Their tensors are small (RoI-sized solver iterations, tiny images), where
    extra threads only add synchronisation; on a 2-core machine shared with
    other processes, 2 threads made the config sweep 6-8x slower (measured:
    ~6 min instead of ~45 s). Subprocess-based tests are not affected.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def drop_annotations(dataset: Dict, image_ids: Sequence[int]) -> None:
    """Remove every annotation of ``image_ids`` from a :func:`make_tiny_coco`
    split (the images stay, without objects)."""
    with open(dataset['ann_path']) as f:
        coco = json.load(f)
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] not in image_ids]
    with open(dataset['ann_path'], 'w') as f:
        json.dump(coco, f)


@pytest.fixture(scope='session')
def annotation_dropper():
    """:func:`drop_annotations`."""
    return drop_annotations


@pytest.fixture(scope='session')
def mmdet_configs_resolvable():
    """Fail early and clearly if ``mmdet::`` base configs cannot be resolved.

    mmengine 0.10.7 resolves ``_base_ = 'mmdet::...'`` through
    ``pkg_resources``, which setuptools >= 81 no longer ships (hence the
    ``setuptools<81`` pin in requirements/build.txt).
    """
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        pytest.fail("pkg_resources is missing, so mmengine cannot resolve 'mmdet::' configs: "
                    "install 'setuptools<81' (requirements/build.txt) in the environment.")


@pytest.fixture(scope='session')
def tiny_config_writer(mmdet_configs_resolvable):
    """``tiny_configs.write_tiny_mask_rcnn_config``."""
    return write_tiny_mask_rcnn_config


@pytest.fixture(scope='session')
def ifr_config_writer(mmdet_configs_resolvable):
    """``tiny_configs.write_tiny_ifr_config``."""
    return write_tiny_ifr_config


@pytest.fixture(scope='session')
def tool_runner():
    """``tool_runs.run_tool``: a tool in a subprocess, failing the test if it fails."""
    return run_tool


@pytest.fixture(scope='session')
def tool_runner_unchecked():
    """``tool_runs.run_tool_unchecked``: for runs that are expected to fail."""
    return run_tool_unchecked


@pytest.fixture(scope='session')
def probe_module():
    """Name of the probe hooks module of the ``tools/`` tests, for ``custom_imports``
    (``tests/helpers/mmifr_test_probes.py``; the tool runs find it)."""
    return PROBE_MODULE


@pytest.fixture(scope='session')
def engine_probe_module():
    """Name of the probe blocks and hooks module of the training tests, for
    ``custom_imports`` (``tests/helpers/mmifr_engine_probes.py``)."""
    return ENGINE_PROBE_MODULE
