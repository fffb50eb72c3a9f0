"""``tools/analysis_tools/mask_fill.py``: matching detections to objects and the mask
statistics, on hand-made masks."""
import numpy as np
import pycocotools.mask as mask_utils
import pytest
from tool_runs import load_tool

tool = load_tool('tools/analysis_tools/mask_fill.py')


def _square(x1, y1, x2, y2, size=40):
    mask = np.zeros((size, size), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def test_each_object_takes_its_best_scoring_detection_of_its_class_once():
    gt_masks = np.stack([_square(0, 0, 20, 20), _square(20, 20, 40, 40)])
    gt_boxes = np.array([[0, 0, 20, 20], [20, 20, 40, 40]], np.float32)
    # Two detections on the first object (the better-scoring one half-fills it), one of
    # the wrong class on the second.
    masks = np.stack([_square(0, 0, 20, 10), _square(0, 0, 20, 20), _square(20, 20, 40, 40)])
    boxes = np.array([[0, 0, 20, 20], [0, 0, 20, 20], [20, 20, 40, 40]], np.float32)
    records = tool.match_objects(gt_boxes, np.array([0, 1]), gt_masks, boxes, np.array([0, 0, 2]),
                                 np.array([0.9, 0.5, 0.8]), masks, box_iou=0.5)
    first, second = records
    assert first == dict(matched=True, area_ratio=0.5, mask_iou=0.5, box_fill=0.5)
    assert second == dict(matched=False)
    summary = tool.summarise(records)
    assert summary['matched_share'] == 0.5 and summary['median_mask_iou'] == 0.5


def test_no_detections_leave_every_object_unmatched():
    gt_masks = np.stack([_square(0, 0, 20, 20)])
    records = tool.match_objects(np.array([[0, 0, 20, 20]], np.float32), np.array([0]), gt_masks,
                                 np.zeros((0, 4), np.float32), np.zeros(0, int), np.zeros(0),
                                 np.zeros((0, 40, 40), bool), box_iou=0.5)
    assert records == [dict(matched=False)]
    assert tool.summarise(records)['median_area_ratio'] is None


def test_polygons_and_rle_decode_to_the_same_mask():
    mask = _square(5, 5, 15, 25)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    polygon = [[5, 5, 15, 5, 15, 25, 5, 25]]
    assert (tool.decode(rle, 40, 40) == mask).all()
    assert abs(int(tool.decode(polygon, 40, 40).sum()) - int(mask.sum())) <= 40  # edge pixels


def test_a_bad_box_iou_is_named(capsys):
    with pytest.raises(SystemExit):
        tool.parse_args(['cfg.py', 'ckpt.pth', '--box-iou', '0'])
    assert '--box-iou must lie in (0, 1], got 0.0' in capsys.readouterr().err
