"""Unit tests of ``mmifr.utils.setup_cpu_distributed`` (fast, single process)."""
import socket

import pytest
import torch.distributed as torch_dist
from mmengine.config import Config

from mmifr.utils import setup_cpu_distributed, teardown_distributed


def _cfg(**kwargs):
    base = dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60)))
    base.update(kwargs)
    return Config(base)


@pytest.mark.parametrize('launcher,cuda', [('none', False), ('pytorch', True), ('slurm', True)])
def test_noop_without_launcher_or_with_cuda(launcher, cuda):
    cfg = _cfg(launcher=launcher)
    assert setup_cpu_distributed(cfg, cuda_available=cuda) is False
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg


@pytest.mark.parametrize('launcher', ['slurm', 'mpi'])
def test_cluster_launchers_on_cpu_are_refused(launcher):
    with pytest.raises(NotImplementedError, match=launcher):
        setup_cpu_distributed(_cfg(launcher=launcher), cuda_available=False)


@pytest.fixture
def single_process_env(monkeypatch):
    """A torchrun-like environment for a world of one; destroys the group."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for key, value in dict(
            RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    assert not torch_dist.is_initialized()
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_cpu_pytorch_launcher(single_process_env):
    cfg = _cfg(find_unused_parameters=True)
    assert setup_cpu_distributed(cfg, cuda_available=False) is True
    # gloo, other dist_cfg keys kept.
    assert cfg.env_cfg.dist_cfg == dict(backend='gloo', timeout=60)
    # The Runner's default DDP wrapper, without CUDA device ids.
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=True)
    # The group exists, so Runner.setup_env will not call mmengine's init_dist.
    assert torch_dist.is_initialized()
    assert torch_dist.get_backend() == 'gloo'
    assert torch_dist.get_world_size() == 1


def test_cpu_without_env_cfg(single_process_env):
    cfg = Config(dict(launcher='pytorch'))
    assert setup_cpu_distributed(cfg, cuda_available=False) is True
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


def test_cpu_keeps_user_wrapper_cfg(single_process_env):
    cfg = _cfg(model_wrapper_cfg=dict(type='MMDistributedDataParallel', broadcast_buffers=True))
    setup_cpu_distributed(cfg, cuda_available=False)
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=True, device_ids=None)
    # A non-DDP wrapper does not take ``device_ids``: left untouched.
    cfg = _cfg(model_wrapper_cfg=dict(type='MMFullyShardedDataParallel'))
    setup_cpu_distributed(cfg, cuda_available=False)
    assert cfg.model_wrapper_cfg == dict(type='MMFullyShardedDataParallel')


def test_teardown_destroys_the_group_once(single_process_env):
    setup_cpu_distributed(Config(dict(launcher='pytorch')), cuda_available=False)
    assert torch_dist.is_initialized()
    teardown_distributed()
    assert not torch_dist.is_initialized()
    # Single-process runs (no group) and a second call: nothing to do.
    teardown_distributed()
    assert not torch_dist.is_initialized()
