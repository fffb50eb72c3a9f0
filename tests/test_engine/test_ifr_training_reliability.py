"""Training behaviour of IFR models: divergence, resume, DDP, determinism.

The quick tests work on an :class:`~mmifr.models.layers.IFRRefiner` alone.
The slow ones train the tiny IFR Mask R-CNN of ``tests/helpers/tiny_configs.py``
with ``tools/train.py`` / ``tools/dist_train.sh`` in subprocesses, exactly as a
user would, and look inside through the probe hooks of
``tests/helpers/mmifr_engine_probes.py``.
"""
import glob
import json
import math
import os.path as osp
import socket
import sys

import pytest
import torch
from mmengine.hooks import LoggerHook
from mmengine.runner import get_priority

import mmifr  # noqa: F401  (weights_only-safe checkpoint globals for torch.load)
from mmifr.engine.hooks import IFRSolverStatsHook, IFRUnrollWarmupHook
from mmifr.models.layers import IFRRefiner
from mmifr.models.layers import ifr_refiner as ifr_refiner_module
from mmifr.ops import DEQStats
from mmifr.ops.solvers import SolverStats


def _run_dir(work_dir):
    runs = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(runs) == 1, runs
    return osp.dirname(osp.dirname(runs[0]))


def _scalars(work_dir):
    """The training entries of mmengine's ``scalars.json``, one per logged iter."""
    with open(osp.join(_run_dir(work_dir), 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f if line.strip()]


def _log_text(work_dir):
    run = _run_dir(work_dir)
    with open(osp.join(run, osp.basename(run) + '.log')) as f:
        return f.read()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _literal_refiner(weight_scale):
    """A refiner with the literal Eq. 5 block whose output scale is blown up."""
    torch.manual_seed(0)
    refiner = IFRRefiner(
        in_channels=8,
        channels=8,
        block=dict(type='DoubleResidualBlock', form='literal'),
        solver=dict(solver='broyden', max_iter=8, backward_max_iter=8))
    with torch.no_grad():
        # GroupNorm's affine weight scales the residual branch: an expansive
        # map whose iterates overflow fp32 within the first steps.
        refiner.block.norm2.weight.mul_(weight_scale)
    return refiner


# --------------------------------------------------------------- quick tests


def test_diverging_literal_block_gives_finite_features_and_warns(monkeypatch):
    warnings = []
    monkeypatch.setattr(ifr_refiner_module, 'print_log',
                        lambda msg, **kwargs: warnings.append((msg, kwargs)))
    refiner = _literal_refiner(1e30)
    x = torch.randn(3, 8, 7, 7, requires_grad=True)
    h = refiner(x)
    stats = refiner.deq.last_stats
    assert stats.forward.nonfinite.all()
    # The best finite iterate comes back, and gradients stay finite too.
    assert torch.isfinite(h).all()
    h.square().mean().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in refiner.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name
    assert refiner.nonfinite_events == 1
    assert len(warnings) == 1
    msg, kwargs = warnings[0]
    assert kwargs['level'] == 30  # logging.WARNING
    assert 'NaN/Inf' in msg and '3 of 3 samples' in msg
    assert "'fwd_nonfinite': 3.0" in msg


def test_nonfinite_warning_is_rate_limited(monkeypatch):
    warnings = []
    monkeypatch.setattr(ifr_refiner_module, 'print_log',
                        lambda msg, **kwargs: warnings.append(msg))
    refiner = IFRRefiner(in_channels=8, channels=8)
    bad = SolverStats(
        nstep=torch.ones(2, dtype=torch.long),
        abs_residual=torch.ones(2),
        rel_residual=torch.ones(2),
        converged=torch.zeros(2, dtype=torch.bool),
        nonfinite=torch.tensor([True, False]),
        nfev=1)
    good = SolverStats(**{**bad.__dict__, 'nonfinite': torch.zeros(2, dtype=torch.bool)})
    for _ in range(250):
        refiner._record(DEQStats(bad))
        refiner._record(DEQStats(good))
    assert refiner.nonfinite_events == 250
    # Events 1, 2, 3, then every 100th.
    assert [int(m.split('(event ')[1].split(')')[0]) for m in warnings] == [1, 2, 3, 100, 200]


def test_stats_hook_runs_before_the_logger():
    """Otherwise each iteration's IFR scalars (the NaN counter included) are
    logged one line late, and the last iteration's never."""
    assert get_priority(IFRSolverStatsHook.priority) < get_priority(LoggerHook.priority)
    # The warm-up hook must set the phase before the probes/loggers read it.
    assert get_priority(IFRUnrollWarmupHook.priority) <= get_priority('NORMAL')


# ---------------------------------------------------------------- slow tests


@pytest.mark.slow
def test_nan_inside_the_solve_during_training(tmp_path, tiny_coco_factory, ifr_config_writer,
                                              engine_probe_module, tool_runner):
    """The forward solve meets NaN from its 3rd step on, every DEQ iteration:
    losses stay finite, the counter is logged, the warning is in the log."""
    dataset = tiny_coco_factory(str(tmp_path / 'data'))
    max_iters = 3
    config = ifr_config_writer(
        str(tmp_path / 'nan.py'),
        dataset,
        max_iters=max_iters,
        ckpt_interval=max_iters,
        block=dict(type='NaNInjectingBlock', nan_from_call=3),
        switch_iter=1,  # iteration 1 unrolled (autograd: untouched), then DEQ
        imports=[engine_probe_module])
    work_dir = str(tmp_path / 'work_dir')
    tool_runner([sys.executable, 'tools/train.py', config, '--work-dir', work_dir],
                cwd=str(tmp_path))

    scalars = _scalars(work_dir)
    assert [s['iter'] for s in scalars] == list(range(1, max_iters + 1))
    for s in scalars:
        for key in ('loss', 'loss_mask', 'loss_cls', 'loss_bbox'):
            assert math.isfinite(s[key]), (s['iter'], key, s[key])
    # Cumulative count of solves that met NaN, logged with its own iteration.
    assert [s['ifr/nonfinite_events'] for s in scalars] == [0, 1, 2]
    assert [s['ifr/unroll_warmup'] for s in scalars] == [1.0, 0.0, 0.0]
    assert scalars[-1]['ifr/fwd_nonfinite'] > 0
    # The adjoint solve is not poisoned (autograd calls are untouched).
    assert scalars[-1]['ifr/bwd_nonfinite'] == 0
    log = _log_text(work_dir)
    assert 'WARNING - IFRRefiner: NaN/Inf inside the fixed-point solve' in log
    assert 'their best finite iterate is used' in log
    assert 'ifr/nonfinite_events: 2' in log


def _phase(record):
    phases = list(record['phase'].values())
    assert len(phases) == 1  # one refiner (the mask head's)
    return phases[0]


def _latest_run_scalars(work_dir):
    """``scalars.json`` of the newest run in ``work_dir`` (resumes add runs)."""
    runs = sorted(glob.glob(osp.join(work_dir, '2*', 'vis_data', 'scalars.json')))
    with open(runs[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def _assert_same_optimizer_state(probe, saved):
    assert len(saved['state']) > 0
    assert probe['state'].keys() == saved['state'].keys()
    for idx, state in saved['state'].items():
        assert state.keys() == probe['state'][idx].keys()
        for key, value in state.items():
            assert torch.equal(probe['state'][idx][key], value), (idx, key)
    for group_p, group_s in zip(probe['param_groups'], saved['param_groups']):
        assert group_p == group_s


@pytest.mark.slow
def test_kill_and_resume_across_the_warmup_switch(tmp_path, tiny_coco_factory, ifr_config_writer,
                                                  engine_probe_module, tool_runner,
                                                  tool_runner_unchecked):
    """A run that checkpoints at iters 2 and 4 (warm-up: iters 1-3) is
    SIGKILLed after iter 5. Resuming from either checkpoint restores the
    iteration, weights, optimizer state and the unroll/DEQ phase."""
    dataset = tiny_coco_factory(str(tmp_path / 'data'))
    max_iters, switch, unroll_steps = 6, 3, 2
    config = ifr_config_writer(
        str(tmp_path / 'resume.py'),
        dataset,
        max_iters=max_iters,
        ckpt_interval=2,
        switch_iter=switch,
        unroll_steps=unroll_steps,
        imports=[engine_probe_module],
        hooks=[dict(type='PhaseProbeHook'), dict(type='KillAtIterHook')])
    work_dir = str(tmp_path / 'work_dir')

    def train(*args, probe, check=True):
        cmd = [
            sys.executable, 'tools/train.py', config, *args, '--cfg-options',
            f'custom_hooks.2.out_file={tmp_path / probe}'
        ]
        if check:
            tool_runner(cmd, cwd=str(tmp_path))
        else:
            cmd.append('custom_hooks.3.kill_at=5')
            return tool_runner_unchecked(cmd, cwd=str(tmp_path))
        return torch.load(str(tmp_path / probe), map_location='cpu')

    killed = train('--work-dir', work_dir, probe='probe_run1.pth', check=False)
    assert killed.returncode == -9, killed.stdout[-4000:]
    assert 'Iter(train) [5/6]' in killed.stdout and 'Iter(train) [6/6]' not in killed.stdout
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth'))) == \
        ['iter_2.pth', 'iter_4.pth']

    # Resume after the switch: bare --resume picks the killed run's latest checkpoint.
    ckpt4 = torch.load(osp.join(work_dir, 'iter_4.pth'), map_location='cpu')
    probe = train('--work-dir', work_dir, '--resume', probe='probe_resume4.pth')
    assert probe['before_train']['iter'] == probe['first_iter']['iter'] == 4
    for record in (probe['before_train'], probe['first_iter']):
        assert _phase(record) == dict(unroll_warmup=None, effective_mode='deq')
    solve, = probe['first_iter_solve'].values()
    assert solve['has_backward']  # a DEQ solve with its implicit backward ran
    for name, value in ckpt4['state_dict'].items():
        assert torch.equal(probe['before_train']['state_dict'][name], value), name
    _assert_same_optimizer_state(probe['before_train']['optimizer'], ckpt4['optimizer'])
    resumed = _latest_run_scalars(work_dir)
    assert [s['iter'] for s in resumed] == [5, 6]
    assert [s['ifr/unroll_warmup'] for s in resumed] == [0.0, 0.0]
    assert osp.isfile(osp.join(work_dir, 'iter_6.pth'))

    # Resume before the switch, from an explicit checkpoint, into a new work dir.
    ckpt2 = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu')
    work_dir2 = str(tmp_path / 'work_dir2')
    probe = train(
        '--work-dir', work_dir2, '--resume', osp.join(work_dir, 'iter_2.pth'),
        probe='probe_resume2.pth')
    assert probe['before_train']['iter'] == probe['first_iter']['iter'] == 2
    for record in (probe['before_train'], probe['first_iter']):
        assert _phase(record) == dict(unroll_warmup=unroll_steps, effective_mode='unroll')
    solve, = probe['first_iter_solve'].values()
    assert solve == dict(fwd_nfev=unroll_steps, has_backward=False)  # unrolled, autograd
    for name, value in ckpt2['state_dict'].items():
        assert torch.equal(probe['before_train']['state_dict'][name], value), name
    _assert_same_optimizer_state(probe['before_train']['optimizer'], ckpt2['optimizer'])
    resumed = _latest_run_scalars(work_dir2)
    assert [s['iter'] for s in resumed] == [3, 4, 5, 6]
    # Iter 3 is the last warm-up iteration, then the DEQ solve takes over.
    assert [s['ifr/unroll_warmup'] for s in resumed] == [1.0, 0.0, 0.0, 0.0]
    assert 'ifr/bwd_nstep' not in resumed[0] and 'ifr/bwd_nstep' in resumed[1]


@pytest.mark.slow
def test_dist_train_ifr_two_processes(tmp_path, tiny_coco_factory, ifr_config_writer,
                                      engine_probe_module, tool_runner, annotation_dropper):
    """``tools/dist_train.sh CONFIG 2`` (gloo on CPU) trains the IFR model in
    both phases with bit-identical parameters on both ranks after every step,
    also when one rank's batch has no RoIs for the mask head (the refiner
    params must still get (zero) gradients there, or DDP's reducer fails)."""
    nproc, max_iters = 2, 4
    dataset = tiny_coco_factory(str(tmp_path / 'data'))
    # Unshuffled, batch 1: rank 0 sees images 1, 3, 1, 3 and rank 1 images
    # 2, 4, 2, 4. Image 1 loses its objects: rank 0 has no positive RoIs in
    # iters 1 (unrolled) and 3 (DEQ) while rank 1 has some.
    annotation_dropper(dataset, [1])
    hash_dir = tmp_path / 'hashes'
    hash_dir.mkdir()
    config = ifr_config_writer(
        str(tmp_path / 'dist.py'),
        dataset,
        max_iters=max_iters,
        ckpt_interval=max_iters,
        switch_iter=2,  # iters 1-2 unrolled, 3-4 DEQ
        imports=[engine_probe_module],
        hooks=[
            dict(type='ParamHashHook', out_dir=str(hash_dir)),
            dict(type='RefinerBatchProbeHook', out_file=str(hash_dir / 'rois_rank{rank}.json')),
        ],
        extra=('train_dataloader.update(batch_size=1)\n'
               "train_dataloader['sampler'].update(shuffle=False)\n"
               "train_dataloader['dataset'].update(filter_cfg=dict(filter_empty_gt=False))\n"))
    work_dir = str(tmp_path / 'work_dir')
    tool_runner(['bash', 'tools/dist_train.sh', config,
                 str(nproc), '--work-dir', work_dir],
                cwd=str(tmp_path),
                env=dict(PORT=str(_free_port())))

    records, rois = {}, {}
    for rank in range(nproc):
        with open(hash_dir / f'hash_rank{rank}.jsonl') as f:
            records[rank] = [json.loads(line) for line in f]
        with open(hash_dir / f'rois_rank{rank}.json') as f:
            rois[rank] = [c['rois'] for c in json.load(f) if c['training']]
    for rank, recs in records.items():
        assert [r['iter'] for r in recs] == list(range(1, max_iters + 1))
        for r in recs:
            assert r['world_size'] == nproc and r['wrapped']
            if not torch.cuda.is_available():
                assert r['backend'] == 'gloo'
    # One refiner call per iteration; rank 0 had empty batches in both phases.
    assert rois[0][0] == rois[0][2] == 0 and rois[0][1] > 0
    assert all(n > 0 for n in rois[1]) and len(rois[1]) == max_iters
    # DDP keeps the replicas identical after every step, in both phases.
    for r0, r1 in zip(records[0], records[1]):
        assert r0['hash'] == r1['hash'], r0['iter']
        assert r0['refiner_hash'] == r1['refiner_hash'], r0['iter']
    # The refiner was trained (its weights changed at every step).
    assert len({r['refiner_hash'] for r in records[0]}) == max_iters
    scalars = _scalars(work_dir)
    assert [s['ifr/unroll_warmup'] for s in scalars] == [1.0, 1.0, 0.0, 0.0]
    assert 'ifr/bwd_nstep' in scalars[-1]
    for s in scalars:
        assert math.isfinite(s['loss'])


def _train_losses(tool_runner, tmp_path, config, name, *cfg_options):
    work_dir = str(tmp_path / name)
    args = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
    if cfg_options:
        args += ['--cfg-options', *cfg_options]
    tool_runner(args, cwd=str(tmp_path))
    keys = ('loss', 'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask')
    return [{k: s[k] for k in keys} for s in _scalars(work_dir)]


@pytest.mark.slow
def test_deterministic_runs_give_identical_losses(tmp_path, tiny_coco_factory, ifr_config_writer,
                                                  tool_runner):
    """``randomness=dict(seed=..., deterministic=True)``: two IFR runs log the
    same losses, through the warm-up and the DEQ phase."""
    dataset = tiny_coco_factory(str(tmp_path / 'data'))
    config = ifr_config_writer(
        str(tmp_path / 'det.py'),
        dataset,
        max_iters=4,
        ckpt_interval=4,
        switch_iter=2,
        extra='randomness = dict(seed=2024, deterministic=True)\n')
    first = _train_losses(tool_runner, tmp_path, config, 'run1')
    second = _train_losses(tool_runner, tmp_path, config, 'run2')
    assert len(first) == 4
    assert first == second
    # Not vacuous: another seed (other initial weights, flips, sampling)
    # gives other losses.
    other = _train_losses(tool_runner, tmp_path, config, 'run3', 'randomness.seed=7')
    assert other != first
