"""The stock RetinaNet / FreeAnchor heads with the IFR heads' predictor init."""
import pytest
import torch

from mmdet.registry import MODELS
from mmifr.models.dense_heads import SmallInitFreeAnchorRetinaHead, SmallInitRetinaHead

PAIRS = [('RetinaHead', SmallInitRetinaHead, 'IFRRetinaHead'),
         ('FreeAnchorRetinaHead', SmallInitFreeAnchorRetinaHead, 'IFRFreeAnchorRetinaHead')]
_HEAD = dict(num_classes=4, in_channels=16, feat_channels=16, stacked_convs=2)


def _anchors():
    return dict(
        anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0], strides=[8, 16]))


@pytest.mark.parametrize('mmdet_type,small_init,ifr_type', PAIRS)
def test_only_the_predictor_weights_differ_from_mmdets_head(mmdet_type, small_init, ifr_type):
    torch.manual_seed(0)
    mmdet = MODELS.build(dict(type=mmdet_type, **_HEAD, **_anchors()))
    mmdet.init_weights()
    torch.manual_seed(0)
    stock = small_init(**_HEAD, **_anchors())
    stock.init_weights()
    for name, param in mmdet.named_parameters():
        if name.split('.')[0] in ('retina_cls', 'retina_reg') and name.endswith('weight'):
            # mmdet: N(0, 0.01); here N(0, 0.001).
            assert abs(stock.get_parameter(name).std().item() / 1e-3 - 1) < 0.2, name
            assert param.std().item() > 5 * stock.get_parameter(name).std().item()
        else:
            # Towers and biases (incl. the classifier's prior bias) as mmdet's.
            assert torch.equal(param, stock.get_parameter(name)), name

    # The IFR twin starts its predictors the same way.
    ifr = MODELS.build(dict(type=ifr_type, **_HEAD, **_anchors()))
    assert ifr.predictor_init_std == stock.predictor_init_std == 1e-3
    assert ifr.init_predictors == stock.init_predictors
