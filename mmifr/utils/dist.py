"""Multi-process training and testing on machines without CUDA.

MMEngine 0.10.7's distributed path assumes GPUs in three places:

1. ``env_cfg.dist_cfg.backend`` defaults to ``'nccl'`` in mmdet's runtime
   config, and NCCL needs CUDA devices;
2. ``mmengine.dist.utils._init_dist_pytorch`` unconditionally calls
   ``torch.cuda.set_device(local_rank)``, which raises on a CPU-only build of
   PyTorch (``torch._C`` has no ``_cuda_setDevice``) and on a GPU build without
   visible devices;
3. ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
   ``DistributedDataParallel``, which DDP rejects for a module living on CPU.

:func:`setup_cpu_distributed` patches the *config* (not mmengine) for these
three and initialises the process group itself; ``Runner.setup_env`` then
sees an initialised group and skips its own ``init_dist``. It is a no-op for
single-process runs and whenever CUDA is available, so GPU runs are unchanged.

:func:`teardown_distributed` ends a run's process group before the interpreter
exits, which neither mmengine nor torchrun does.
"""
import datetime
import os
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmdet.registry import MODEL_WRAPPERS
from mmengine.config import Config
from mmengine.logging import print_log
from torch.nn.parallel import DistributedDataParallel

#: Backend used for multi-process runs on CPU.
CPU_DIST_BACKEND = 'gloo'


def _wrapper_is_ddp(wrapper_type) -> bool:
    """Whether a ``model_wrapper_cfg['type']`` is a DDP subclass.

    Looked up in mmdet's registry, which falls back to mmengine's, so both
    mmdet-scoped and mmengine wrappers resolve.
    """
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    return isinstance(wrapper_type, type) and issubclass(wrapper_type, DistributedDataParallel)


def setup_cpu_distributed(cfg: Config, cuda_available: Optional[bool] = None) -> bool:
    """Prepare ``cfg`` (and the process group) for a distributed CPU run.

    Does nothing unless ``cfg.launcher`` is not ``'none'`` and CUDA is
    unavailable. Otherwise it

    - sets ``cfg.env_cfg.dist_cfg.backend = 'gloo'`` (keeping other
      ``dist_cfg`` keys such as ``timeout``);
    - makes DDP wrap the CPU model with ``device_ids=None``: an explicit
      ``model_wrapper_cfg`` equivalent to the Runner's default one is written
      when the config has none, and ``device_ids=None`` is added to a DDP-type
      one that has none;
    - for ``launcher='pytorch'``, initialises the default process group from
      the ``torchrun`` environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
      ``MASTER_PORT``).

    Args:
        cfg (Config): The full config; ``cfg.launcher`` must already be set.
        cuda_available (bool, optional): Override CUDA detection (tests).
            Defaults to ``torch.cuda.is_available()``.

    Returns:
        bool: True if the config was switched to CPU distributed mode.

    Raises:
        NotImplementedError: For the ``slurm`` and ``mpi`` launchers on CPU:
            mmengine's initialisation for them calls ``torch.cuda.set_device``
            and there is no CPU cluster to test a replacement on.
    """
    launcher = cfg.get('launcher', 'none')
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if launcher == 'none' or cuda_available:
        return False
    if launcher != 'pytorch':
        raise NotImplementedError(
            f'launcher={launcher!r} without CUDA is not supported: mmengine initialises '
            'it with torch.cuda.set_device. Use tools/dist_train.sh (launcher "pytorch").')

    # Not ``setdefault``: Config converts a new dict into a ConfigDict copy,
    # so the returned object would not be the one stored in ``cfg``.
    if cfg.get('env_cfg') is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg') is None:
        cfg.env_cfg.dist_cfg = dict()
    dist_cfg = cfg.env_cfg.dist_cfg
    # Rank 0 only: the group (and thus mmengine's rank-aware logger) does not
    # exist yet, and one line per process is noise.
    if (dist_cfg.get('backend', CPU_DIST_BACKEND) != CPU_DIST_BACKEND
            and os.environ.get('RANK', '0') == '0'):
        print_log(
            f'CUDA is not available: using the "{CPU_DIST_BACKEND}" backend instead of '
            f'"{dist_cfg["backend"]}".',
            logger='current')
    dist_cfg['backend'] = CPU_DIST_BACKEND

    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        # Same wrapper and arguments as Runner.wrap_model's default, minus the
        # CUDA device ids.
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif _wrapper_is_ddp(wrapper_cfg.get('type', 'MMDistributedDataParallel')):
        # An explicit ``device_ids`` key survives Runner.wrap_model's
        # default_args (they are only ``setdefault``-ed).
        wrapper_cfg.setdefault('device_ids', None)

    if not torch_dist.is_initialized():
        # ``init_backend`` (deepspeed / colossalai) is an mmengine-only key.
        kwargs = {k: v for k, v in dist_cfg.items() if k not in ('backend', 'init_backend')}
        if kwargs.get('timeout') is not None:
            # init_process_group wants a timedelta; configs give seconds.
            kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
        torch_dist.init_process_group(
            backend=CPU_DIST_BACKEND,
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            **kwargs)
    return True


def teardown_distributed() -> None:
    """Destroy the default process group, if there is one.

    A gloo group left alive at interpreter exit keeps worker threads whose
    teardown can abort a process that finished its work (``terminate called
    without an active exception``, SIGABRT), and torchrun then reports the
    whole run as failed. The train and test tools call this after a run that
    succeeded; it is a no-op for single-process runs.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        # Every rank gets here before any tears its group down: a rank that
        # left while a peer was still finishing (rank 0 writes the results)
        # has aborted at exit the same way.
        torch_dist.barrier()
        torch_dist.destroy_process_group()
