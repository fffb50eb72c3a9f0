"""``tools.lib.roi_features``: the one mask RoI feature extraction of the tools."""
import pytest
import torch
from mmengine.structures import InstanceData
from torch import nn

from mmdet.structures import DetDataSample
from tools.lib.roi_features import gt_roi_features, mask_roi_features


class _Extractor(nn.Module):
    """Stands for a mask RoI extractor: one row per RoI, ``[image, x1, y1, x2, y2]``."""

    num_inputs = 1

    def forward(self, feats, rois):
        assert len(feats) == 1
        return rois.view(-1, 5, 1, 1)


class _Detector(nn.Module):

    def __init__(self):
        super().__init__()
        self.roi_head = nn.Module()
        self.roi_head.mask_roi_extractor = _Extractor()

    def data_preprocessor(self, batch, training):
        assert not training
        return dict(inputs=torch.stack(batch['inputs']), data_samples=batch['data_samples'])

    def extract_feat(self, inputs):
        return (inputs, inputs)  # a second level the extractor must not be given


def _batch(*images):
    """``images``: per image, its boxes (in the preprocessed image) and scale factor."""
    samples = []
    for i, (boxes, scale) in enumerate(images):
        sample = DetDataSample(metainfo=dict(img_path=f'img{i}.png', scale_factor=scale))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
            labels=torch.arange(len(boxes)))
        samples.append(sample)
    return dict(inputs=[torch.zeros(3, 8, 8) for _ in images], data_samples=samples)


def test_mask_roi_features_numbers_the_images_of_the_batch():
    boxes = [torch.tensor([[0., 0., 2., 2.]]), torch.tensor([[1., 1., 3., 3.], [0., 1., 2., 3.]])]
    x = mask_roi_features(_Detector(), torch.zeros(2, 3, 8, 8), boxes)
    assert x.shape == (3, 5, 1, 1)
    assert x[:, 0].flatten().tolist() == [0, 1, 1]


def test_gt_roi_features_skips_empty_images_and_maps_boxes_back():
    loader = [_batch(([], (1., 1.)), ([[2., 4., 6., 8.]], (2., 4.))),
              _batch(([[0., 0., 4., 4.], [4., 4., 8., 8.]], (1., 1.)), )]
    feats, infos = gt_roi_features(_Detector(), loader)
    assert feats.shape == (3, 5, 1, 1)
    # Features of the preprocessed boxes, infos in the original image's coordinates.
    assert feats[0, 1:].flatten().tolist() == [2., 4., 6., 8.]
    assert infos[0] == dict(img_path='img1.png', box=[1., 1., 3., 2.], label=0)
    assert [info['label'] for info in infos] == [0, 0, 1]


def test_gt_roi_features_stops_at_max_rois():
    calls = []

    def loader():
        for boxes in ([[0., 0., 1., 1.], [1., 1., 2., 2.]], [[0., 0., 3., 3.]], [[0., 0., 5., 5.]]):
            calls.append(boxes)
            yield _batch((boxes, (1., 1.)))

    feats, infos = gt_roi_features(_Detector(), loader(), max_rois=3)
    assert len(calls) == 2  # no image read beyond the one that reached max_rois
    assert feats.shape[0] == len(infos) == 3


def test_gt_roi_features_without_objects_is_an_error():
    with pytest.raises(ValueError, match='no ground-truth objects'):
        gt_roi_features(_Detector(), [_batch(([], (1., 1.)))])
