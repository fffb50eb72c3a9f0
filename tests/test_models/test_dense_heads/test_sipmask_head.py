"""Tests of ``SipMaskHead`` (+ IFR), SipMask's box-and-mask head."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmifr.engine.hooks import find_refiners
from mmifr.models.dense_heads import SipMaskHead

C, NB, IMG = 16, 4, 128
TEST_CFG = ConfigDict(nms_pre=100, min_bbox_size=0, score_thr=0.0,
                      nms=dict(type='nms', iou_threshold=0.6), max_per_img=5, mask_thr=0.5)


def _head(type='SipMaskHead', **kwargs):
    torch.manual_seed(0)
    head = MODELS.build(dict(
        dict(type=type, num_classes=3, in_channels=C, feat_channels=C, stacked_convs=4,
             strides=[8, 16, 32, 64, 128], norm_on_bbox=True, centerness_on_reg=True,
             center_sampling=True, conv_bias=True, norm_cfg=dict(type='GN', num_groups=4),
             num_bases=NB, basis_channels=32, test_cfg=TEST_CFG,
             loss_bbox=dict(type='GIoULoss', loss_weight=1.0)), **kwargs))
    head.init_weights()
    return head


def _feats(batch=2):
    return tuple(torch.randn(batch, C, IMG // s, IMG // s) for s in (8, 16, 32, 64, 128))


def test_towers_and_outputs():
    head = _head()
    assert isinstance(head, SipMaskHead)
    assert len(head.cls_convs) == 3 and len(head.reg_convs) == 4
    assert head.controller.out_channels == 4 * NB
    # The offsets start at zero: FeatureAlign starts as a plain 3x3 conv.
    assert head.feat_align.conv_offset.weight.eq(0).all()
    cls, bbox, ctr, coeffs, bases = head(_feats())
    assert [c.shape[-1] for c in cls] == [16, 8, 4, 2, 1]
    assert coeffs[0].shape == (2, 4 * NB, 16, 16)
    assert bases.shape == (2, NB, IMG // 2, IMG // 2)


def test_ifr_head_replaces_both_towers():
    ifr = _head(type='IFRSipMaskHead')
    assert sorted(find_refiners(ifr)) == ['cls_convs.0', 'reg_convs.0']
    assert ifr(_feats(1))[4].shape == (1, NB, IMG // 2, IMG // 2)


def test_each_quadrant_of_the_box_gets_its_own_coefficients():
    head = _head()
    bases = torch.zeros(NB, 8, 8)
    bases[0] = 1
    coeffs = torch.zeros(1, 4, NB)
    coeffs[0, :, 0] = torch.tensor([-2., -1., 1., 2.])  # top-left ... bottom-right
    masks = head.assemble_masks(bases, coeffs.view(1, -1), torch.tensor([[0., 0., 3.9, 3.9]]))
    expected = torch.zeros(8, 8)
    for k, (r, c) in enumerate([(0, 0), (0, 2), (2, 0), (2, 2)]):
        expected[r:r + 2, c:c + 2] = torch.sigmoid(coeffs[0, k, 0])
    torch.testing.assert_close(masks[0], expected)


def _gts():
    mask = torch.zeros(1, IMG, IMG, dtype=torch.uint8)
    mask[0, 20:80, 30:100] = 1
    gt = InstanceData(bboxes=torch.tensor([[30., 20., 100., 80.]]), labels=torch.tensor([1]),
                      masks=BitmapMasks(mask.numpy(), IMG, IMG))
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long),
                         masks=BitmapMasks(torch.zeros(0, IMG, IMG).numpy(), IMG, IMG))
    return [gt, empty]


def test_training_losses_and_gradients():
    head = _head().train()
    # Boxes of a useful size from the start: the mask loss runs on the
    # positives' predicted boxes.
    torch.nn.init.constant_(head.conv_reg.bias, 2.0)
    metas = [dict(img_shape=(IMG, IMG), pad_shape=(IMG, IMG), batch_input_shape=(IMG, IMG))] * 2
    outs = head(_feats())
    losses = head.loss_by_feat(*outs, _gts(), metas)
    for key in ('loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask'):
        assert torch.isfinite(losses[key]), key
    assert losses['loss_mask'] > 0
    sum(losses.values()).backward()
    for name in ('controller.weight', 'basis_lat.weight', 'basis_lat0.weight',
                 'feat_align.conv_adaption.weight', 'reg_convs.0.conv.weight'):
        grad = head.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_images_without_objects_train():
    head = _head().train()
    metas = [dict(img_shape=(IMG, IMG), pad_shape=(IMG, IMG), batch_input_shape=(IMG, IMG))]
    losses = head.loss_by_feat(*head(_feats(1)), _gts()[1:], metas)
    assert losses['loss_mask'] == 0 and losses['loss_mask'].requires_grad


@pytest.mark.parametrize('score_thr, rescale', [(0.0, True), (0.0, False), (1.01, True)])
def test_predict_masks_fit_the_image_and_may_be_empty(score_thr, rescale):
    head = _head().eval()
    head.test_cfg.score_thr = score_thr
    meta = dict(img_shape=(IMG, IMG - 16), ori_shape=(IMG * 2, IMG * 2 - 32),
                scale_factor=(0.5, 0.5))
    with torch.no_grad():
        (res, ) = head.predict_by_feat(*head(_feats(1)), batch_img_metas=[meta],
                                       rescale=rescale)
    shape = meta['ori_shape'] if rescale else meta['img_shape']
    assert res.masks.shape == (len(res), *shape) and res.masks.dtype == torch.bool
    assert (len(res) > 0) == (score_thr < 1)
    assert 'param_preds' not in res


def test_a_single_conv_tower_is_rejected():
    with pytest.raises(ValueError, match='stacked_convs must be >= 2, got 1'):
        _head(stacked_convs=1)
