"""Small RoI-head inputs shared by the RoI-head tests: two images with masks,
their FPN features and proposals around the ground truth."""
import torch
from mmengine.structures import InstanceData

from mmdet.testing import demo_mm_inputs


def roi_head_inputs(channels, num_classes, img_size, num_items=(3, 2)):
    """``(feats, proposals, samples)`` for ``head.loss(feats, proposals, samples)``.

    Args:
        channels (int): channels of the four FPN levels (strides 4-32).
        num_classes (int): classes of the ground-truth objects.
        img_size (int): side of the square images.
        num_items (Sequence[int]): ground-truth objects per image.
    """
    torch.manual_seed(1)
    samples = demo_mm_inputs(
        len(num_items), image_shapes=[(3, img_size, img_size)] * len(num_items),
        num_items=list(num_items), num_classes=num_classes, with_mask=True)['data_samples']
    feats = tuple(
        torch.randn(len(num_items), channels, img_size // s, img_size // s) for s in (4, 8, 16, 32))
    proposals = []
    for sample in samples:
        gt = sample.gt_instances.bboxes
        boxes = torch.cat([gt, gt + torch.randn_like(gt), torch.rand(20, 4).sort(1)[0] * img_size])
        boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 2)
        proposals.append(InstanceData(bboxes=boxes, scores=torch.rand(len(boxes)),
                                      labels=torch.zeros(len(boxes), dtype=torch.long)))
    return feats, proposals, samples
