"""Tests of MEInst's mask PCA: ``PCAMaskStatistics`` and ``PCAMaskCoder``."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import register_all_modules
from mmifr.models.task_modules import PCAMaskCoder, PCAMaskStatistics

S = 6
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def _low_rank_masks(n=200, rank=3, seed=0):
    """Masks in (0, 1) whose S*S values are an affine function of ``rank``
    random factors."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.linalg.qr(torch.randn(S * S, rank, generator=g))[0].T  # orthonormal rows
    factors = torch.randn(n, rank, generator=g) * torch.tensor([3.0, 2.0, 1.0])[:rank]
    x = 0.5 + 0.04 * (factors @ patterns)
    return x.clamp(0.02, 0.98).reshape(n, S, S), patterns


def test_streamed_pca_equals_the_pca_of_the_whole_set():
    masks, _ = _low_rank_masks()
    stats = PCAMaskStatistics(S, sigmoid=False)
    for chunk in masks.split(37):
        stats.update(chunk)
    pca = stats.pca(5)
    x = masks.reshape(len(masks), -1).double()
    variances, vectors = torch.linalg.eigh(torch.cov(x.T))
    torch.testing.assert_close(pca['explained_variance'], variances.flip(0)[:5].float())
    torch.testing.assert_close(pca['mean'], x.mean(0).float())
    # Components are orthonormal and match eigh's up to sign.
    comps = pca['components'].double()
    torch.testing.assert_close(comps @ comps.T, torch.eye(5, dtype=torch.float64), atol=1e-5,
                               rtol=0)
    top = vectors.flip(1)[:, :3].T
    torch.testing.assert_close((comps[:3] * top).sum(1).abs(), torch.ones(3, dtype=torch.float64),
                               atol=1e-4, rtol=0)


def test_rank_3_masks_are_encoded_and_decoded_exactly_by_3_components():
    masks, _ = _low_rank_masks()
    stats = PCAMaskStatistics(S, sigmoid=False)
    stats.update(masks)
    coder = PCAMaskCoder(dim=3, mask_size=S, sigmoid=False)
    coder.load_pca(stats.pca(3))
    coeffs = coder.encode(masks)
    assert coeffs.shape == (200, 3)
    # Whitened: unit variance per coefficient on the fitted set.
    torch.testing.assert_close(coeffs.var(0), torch.ones(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(coder.decode(coeffs), masks, atol=1e-4, rtol=0)


def test_full_basis_in_logit_space_round_trips_clamped_binary_masks():
    g = torch.Generator().manual_seed(1)
    masks = (torch.rand(400, S, S, generator=g) > 0.5).float()
    stats = PCAMaskStatistics(S, sigmoid=True, eps=0.01)
    stats.update(masks)
    coder = TASK_UTILS.build(dict(type='PCAMaskCoder', dim=S * S, mask_size=S, eps=0.01))
    coder.load_pca(stats.pca(S * S))
    torch.testing.assert_close(coder.decode(coder.encode(masks)), masks.clamp(0.01, 0.99),
                               atol=1e-3, rtol=0)


def test_the_pca_travels_in_the_state_dict(tmp_path):
    masks, _ = _low_rank_masks()
    stats = PCAMaskStatistics(S, sigmoid=False)
    stats.update(masks)
    path = tmp_path / 'pca.pth'
    torch.save(dict(stats.pca(3), sigmoid=False), path)
    fitted = PCAMaskCoder(dim=3, mask_size=S, sigmoid=False, pca_file=str(path))
    assert set(fitted.state_dict()) == {'components', 'explained_variance', 'mean'}
    restored = PCAMaskCoder(dim=3, mask_size=S, sigmoid=False)
    restored.load_state_dict(fitted.state_dict())
    torch.testing.assert_close(restored.encode(masks), fitted.encode(masks))


def test_bad_pcas_and_an_empty_coder_are_named(tmp_path):
    stats = PCAMaskStatistics(S, sigmoid=True)
    stats.update(_low_rank_masks()[0])
    pca = stats.pca(4)
    with pytest.raises(ValueError, match=r'components of shape \(4, 36\); dim=3, mask_size=6 '
                       r'need \(3, 36\)'):
        PCAMaskCoder(dim=3, mask_size=S).load_pca(pca)
    with pytest.raises(ValueError, match='fitted with sigmoid=True, the coder has sigmoid=False'):
        PCAMaskCoder(dim=4, mask_size=S, sigmoid=False).load_pca(dict(pca, sigmoid=True))
    with pytest.raises(RuntimeError, match='no PCA loaded; give pca_file'):
        PCAMaskCoder(dim=4, mask_size=S).encode(torch.zeros(1, S, S))
    with pytest.raises(ValueError, match=r'masks of shape \(2, 5, 5\), expected \(N, 6, 6\)'):
        stats.update(torch.zeros(2, 5, 5))
    with pytest.raises(ValueError, match=r'dim=37 must be in \[1, 36\]'):
        stats.pca(37)
    with pytest.raises(ValueError, match='1 mask'):
        one = PCAMaskStatistics(S)
        one.update(torch.zeros(1, S, S))
        one.pca(2)


def test_a_missing_pca_file_names_the_file_and_the_command_that_fits_it(tmp_path):
    missing = str(tmp_path / 'meinst_pca_60.pth')
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"pca_file '{missing}' does not exist. Fit it on the training masks with "
            '`python tools/analysis_tools/fit_meinst_pca.py <train annotation json> '
            f'--out {missing}`')):
        PCAMaskCoder(dim=4, mask_size=S, pca_file=missing)


def test_the_coco_meinst_config_without_its_pca_says_how_to_fit_it(tmp_path, monkeypatch):
    """As a new user meets it: the COCO config built before the PCA is fitted."""
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'ifr', 'meinst_r50_1x.py'))
    monkeypatch.chdir(tmp_path)  # no data/coco/meinst_pca_60.pth here
    with pytest.raises(FileNotFoundError, match='data/coco/meinst_pca_60.pth.*fit_meinst_pca.py'):
        MODELS.build(cfg.model)
