"""``import mmifr`` makes mmengine training checkpoints weights_only-loadable."""
import io
import os
import pickle
import uuid

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.optim import MultiStepLR, OptimWrapper
from mmengine.runner.checkpoint import _load_checkpoint

import mmifr  # noqa: F401  (registers the safe globals)
from mmifr.utils import checkpoint_safe_globals, register_checkpoint_safe_globals


def _mmengine_like_checkpoint():
    """A checkpoint shaped like what mmengine's CheckpointHook writes."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    scheduler = MultiStepLR(optim_wrapper, milestones=[1, 2], by_epoch=False)
    for _ in range(2):
        model(torch.randn(1, 3, 8, 8)).sum().backward()
        optim_wrapper.step()
        scheduler.step()

    # A fresh hub per call: instances are global and would accumulate.
    hub = MessageHub.get_instance(f'mmifr_test_checkpoint_{uuid.uuid4().hex}')
    for it, loss in enumerate([1.5, 1.25, 1.0]):
        hub.update_scalar('train/loss', loss)
        hub.update_scalar('train/acc', np.float64(50.0 + it))  # numpy scalar input
        hub.update_scalar('train/lr', 0.1, count=2)
    hub.update_info('iter', 3)
    hub.update_info('eta', np.float64(12.5))
    hub.update_info('some_array', np.arange(6, dtype=np.int32).reshape(2, 3))
    hub.update_info('dataset_meta', dict(classes=('a', 'b'), palette=[(1, 2, 3), (4, 5, 6)]))
    return dict(
        meta=dict(epoch=0, iter=3, cfg='model = dict()', seed=0, mmengine_version='0.10.7'),
        state_dict=model.state_dict(),
        message_hub=hub.state_dict(),
        optimizer=optim_wrapper.state_dict(),
        param_schedulers=[scheduler.state_dict()])


@pytest.fixture
def ckpt_file(tmp_path):
    path = str(tmp_path / 'iter_3.pth')
    ckpt = _mmengine_like_checkpoint()
    torch.save(ckpt, path)
    return path, ckpt


def test_mmengine_checkpoint_needs_more_than_default_globals(ckpt_file):
    """Guard: the checkpoint really contains non-default globals (else the
    other tests prove nothing)."""
    path, _ = ckpt_file
    saved = torch.serialization.get_safe_globals()
    try:
        torch.serialization.clear_safe_globals()
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
        with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
            torch.load(path, weights_only=True)
    finally:
        torch.serialization.add_safe_globals(saved)


def test_default_torch_load_after_import(ckpt_file):
    path, ref = ckpt_file
    # No weights_only argument: PyTorch >= 2.6 defaults to True, as in mmengine.
    loaded = torch.load(path, map_location='cpu')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    hub = loaded['message_hub']
    loss = hub['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    assert loss.mean() == pytest.approx(1.25)
    assert loss.current() == 1.0
    assert loss.statistics('max') == 1.5
    assert hub['log_scalars']['train/lr'].data[1].tolist() == [2, 2, 2]
    assert isinstance(hub['runtime_info']['eta'], np.float64)
    np.testing.assert_array_equal(hub['runtime_info']['some_array'],
                                  ref['message_hub']['runtime_info']['some_array'])
    for name, value in ref['state_dict'].items():
        assert torch.equal(loaded['state_dict'][name], value)
    assert loaded['param_schedulers'] == ref['param_schedulers']
    assert loaded['optimizer']['param_groups'] == ref['optimizer']['param_groups']

    # The loaded hub restores into a fresh MessageHub, as Runner.resume does.
    fresh = MessageHub.get_instance(f'mmifr_test_restored_{uuid.uuid4().hex}')
    fresh.load_state_dict(hub)
    assert fresh.get_scalar('train/loss').mean() == pytest.approx(1.25)
    assert fresh.get_info('iter') == 3


def test_explicit_weights_only_and_mmengine_loader(ckpt_file):
    path, _ = ckpt_file
    assert torch.load(path, weights_only=True)['meta']['iter'] == 3
    # The exact call path of Runner.resume / load_checkpoint.
    assert _load_checkpoint(path, map_location='cpu')['meta']['iter'] == 3


class _Evil:
    """Pickles to ``os.system('...')``: must never be executed."""

    def __reduce__(self):
        return os.system, ('echo pwned', )


class _EvilGetattr:
    """Pickles to ``getattr(HistoryBuffer, '__init__')``."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


@pytest.mark.parametrize('payload,match', [(_Evil(), 'system'), (_EvilGetattr(), 'refuses')])
def test_untrusted_globals_still_refused(payload, match):
    buf = io.BytesIO()
    torch.save({'x': payload}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match=match):
        torch.load(buf)


def test_registration_is_idempotent_and_covers_numpy_paths():
    before = set(map(repr, torch.serialization.get_safe_globals()))
    register_checkpoint_safe_globals()
    register_checkpoint_safe_globals()
    assert set(map(repr, torch.serialization.get_safe_globals())) == before
    names = {g[1] for g in checkpoint_safe_globals() if isinstance(g, tuple)}
    # Checkpoints written under numpy 1.x (numpy.core) and 2.x (numpy._core).
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        assert {f'{module}._reconstruct', f'{module}.scalar'} <= names
    assert 'builtins.getattr' in names
