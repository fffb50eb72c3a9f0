"""A minimal mmengine Runner around an :class:`IFRRefiner`, for the hook tests.

The model is a refiner on ``(B, 8, 4, 4)`` inputs followed by a linear head;
the data are random. The solver tolerances are unreachable, so every solve
takes exactly its iteration limit and the logged step counts tell the phases
apart: ``UNROLL_STEPS`` applications in warm-up, ``TRAIN_MAX_ITER`` forward /
``BWD_MAX_ITER`` adjoint steps with the DEQ solve, ``TEST_MAX_ITER`` in eval
(``test_solver``).

Imported by the test modules next to it (``tests/`` is not a package, so they
put this folder on ``sys.path``).
"""
import glob
import json
import os.path as osp
import traceback
import uuid

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import mmifr
from mmifr.engine.hooks import find_refiners
from mmifr.models.layers import IFRRefiner

C, S = 8, 4
UNROLL_STEPS = 2
TRAIN_MAX_ITER = 5
BWD_MAX_ITER = 4
TEST_MAX_ITER = 3


class ToyDataset(Dataset):

    def __init__(self, size=8, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, C, S, S, generator=gen)
        self.y = torch.randn(size, generator=gen)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        return dict(inputs=self.x[idx], data_samples=self.y[idx])


class ToyIFRModel(BaseModel):
    """``y = w . H*(x) + b`` with ``H*`` the IFR equilibrium of ``x``."""

    def __init__(self, jac_reg=None, initializer=None, **refiner_kwargs):
        super().__init__()
        self.refiner = IFRRefiner(
            in_channels=C,
            channels=C,
            solver=dict(
                solver='broyden',
                max_iter=TRAIN_MAX_ITER,
                tol=1e-30,
                backward_max_iter=BWD_MAX_ITER,
                backward_tol=1e-30),
            test_solver=dict(max_iter=TEST_MAX_ITER),
            jac_reg=jac_reg,
            initializer=initializer,
            **refiner_kwargs)
        self.head = nn.Linear(C * S * S, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.head(self.refiner(inputs).flatten(1)).squeeze(1)
        if mode == 'loss':
            return dict(loss_mse=F.mse_loss(out, data_samples))
        if mode == 'predict':
            return [dict(pred=o, gt=t) for o, t in zip(out, data_samples)]
        return out


class ToyMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results += [float((s['pred'] - s['gt'])**2) for s in data_samples]

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))


class PhaseRecorder(Hook):
    """Records what the refiner did in each train / val / test iteration.

    Priority LOW: its ``before_*`` methods run after IFRUnrollWarmupHook's
    (NORMAL); its ``after_train_iter`` reads ``deq.last_stats`` (never popped),
    so the order relative to IFRSolverStatsHook does not matter.
    """
    priority = 'LOW'

    def __init__(self):
        # Named apart from the hook methods (``before_train`` ...).
        self.train_start = []
        self.train = []
        self.val = []
        self.test = []

    def _snapshot(self, runner):
        refiner = find_refiners(runner.model)['refiner']
        stats = refiner.deq.last_stats
        return dict(
            iter=runner.iter,
            mode=refiner.effective_mode,
            fwd_nfev=stats.forward.nfev,
            has_backward=stats.backward is not None)

    def before_train(self, runner):
        refiner = find_refiners(runner.model)['refiner']
        self.train_start.append(dict(iter=runner.iter, mode=refiner.effective_mode))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.train.append(self._snapshot(runner))

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.val.append(self._snapshot(runner))

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.test.append(self._snapshot(runner))


def _loader(seed, batch_size=2):
    return dict(
        dataset=ToyDataset(seed=seed),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=batch_size,
        num_workers=0,
        collate_fn=dict(type='default_collate'))


def make_runner(work_dir,
                hooks,
                max_iters=6,
                val_interval=None,
                ckpt_interval=2,
                load_from=None,
                resume=False,
                with_test=False,
                jac_reg=None,
                initializer=None,
                **refiner_kwargs):
    """A Runner of :class:`ToyIFRModel` with an ``IterBasedTrainLoop``.

    Args:
        work_dir (str): work directory.
        hooks (list): custom hooks (configs in the ``mmdet`` scope or objects).
        max_iters (int): training iterations.
        val_interval (int, optional): validate every that many iterations.
        ckpt_interval (int): checkpoint every that many iterations.
        load_from (str, optional): checkpoint to load / resume from.
        resume (bool): resume (iteration, optimizer, message hub) from it.
        with_test (bool): also set up ``runner.test()``.
        jac_reg (dict, optional): the refiner's Jacobian regularisation.
        initializer (dict, optional): the refiner's learned initial guess.
        **refiner_kwargs: further :class:`IFRRefiner` options (``budget``,
            ``consistency``, ...).
    """
    torch.manual_seed(0)
    kwargs = {}
    if val_interval:
        kwargs.update(
            val_dataloader=_loader(seed=1),
            val_cfg=dict(type='ValLoop'),
            val_evaluator=Evaluator([ToyMetric()]))
    if with_test:
        kwargs.update(
            test_dataloader=_loader(seed=2),
            test_cfg=dict(type='TestLoop'),
            test_evaluator=Evaluator([ToyMetric()]))
    return Runner(
        model=ToyIFRModel(jac_reg=jac_reg, initializer=initializer, **refiner_kwargs),
        work_dir=work_dir,
        # Unique names keep the loggers and message hubs of runners apart.
        experiment_name=f'ifr_hooks_{uuid.uuid4().hex[:8]}',
        train_dataloader=_loader(seed=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(
            type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval or 10**6),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=ckpt_interval)),
        custom_hooks=hooks,
        log_processor=dict(by_epoch=False, window_size=1),
        load_from=load_from,
        resume=resume,
        # The IFR hooks live in mmdet's registry, as in the project configs.
        default_scope='mmdet',
        **kwargs)


def scalars(runner):
    """Lines of the run's ``vis_data/scalars.json`` (one per logged step)."""
    path = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def log_text(runner):
    (path, ) = glob.glob(osp.join(runner.log_dir, '*.log'))
    with open(path) as f:
        return f.read()


def count_module_walks(model):
    """Count the calls of ``model.named_modules()`` made from mmifr's code from now on
    (PyTorch's own, e.g. from ``named_parameters()``, are not counted)."""
    package = osp.dirname(osp.abspath(mmifr.__file__)) + osp.sep
    calls = []
    walk = model.named_modules

    def counting(*args, **kwargs):
        if any(frame.filename.startswith(package) for frame in traceback.extract_stack()):
            calls.append(1)
        return walk(*args, **kwargs)

    model.named_modules = counting
    return calls
