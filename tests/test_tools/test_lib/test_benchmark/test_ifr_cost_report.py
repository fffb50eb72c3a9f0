"""``tools.lib.benchmark.ifr_cost_report``: the report's markdown and files."""
import json

from tools.lib.benchmark.ifr_cost_report import markdown, write_report

MACHINE = dict(cpu='Test CPU', logical_cpus=2, threads=1, torch='2.x',
               load_average=(0.5, 0.25, 0.0))


def _report(**sections):
    return dict(machine=MACHINE, repeats=3, argv=[], **sections)


def _table_rows(md, title):
    """The body rows of the table under the ``## title...`` heading."""
    block = md.split('## ' + title, 1)[1].split('\n## ', 1)[0]
    return [ln for ln in block.splitlines() if ln.startswith('|')][2:]


def test_machine_line_and_only_the_sections_run():
    md = markdown(_report())
    assert md.splitlines()[0] == '# IFR cost against the stock mask head'
    assert ('Machine: Test CPU, 2 logical CPUs, 1 intra-op thread(s), torch 2.x; load average '
            'at start (0.5, 0.25, 0.0). Times: median of 3 runs after a warm-up.') in md
    assert '##' not in md


def test_head_table_shows_missing_metrics_as_dashes():
    head = dict(inputs='random', num_rois=100, train_rois=128, roi_shape=[256, 14, 14],
                rows=dict(
                    stock=dict(label='stock', lever='', infer_s=0.01, infer_ratio=1.0,
                               infer_steps={}, train_s=0.02, train_ratio=1.0, train_steps={},
                               train_peak_mib=10.4, train_peak_ratio=1.0),
                    ifr=dict(label='IFR', lever='chunks', infer_s=0.05, infer_ratio=5.0,
                             infer_steps=dict(fwd_steps=7.25), train_s=0.1, train_ratio=5.0,
                             train_steps=dict(fwd_steps=8.0, bwd_steps=9.5),
                             train_peak_mib=30.0, train_peak_ratio=2.885),
                    fast=dict(label='fast', lever='inference solve only', infer_s=0.02,
                              infer_ratio=2.0, infer_steps=dict(fwd_steps=3.0))))
    md = markdown(_report(head=head))
    assert '## Mask head alone (random)' in md and 'on 128 RoIs of 256x14x14' in md
    assert _table_rows(md, 'Mask head alone') == [
        '| stock | 0.010 | 1.00 | - | 0.020 | 1.00 | - | 10 | 1.00 |  |',
        '| IFR | 0.050 | 5.00 | 7.2 | 0.100 | 5.00 | 8.0 / 9.5 | 30 | 2.88 | chunks |',
        '| fast | 0.020 | 2.00 | 3.0 | - | - | - | - | - | inference solve only |',
    ]


def test_e2e_and_accuracy_tables():
    e2e = dict(weights='random init', data='config (data/shapes)', forced_detections='none',
               ifr_test_solver=dict(tol=0.03),
               rows=dict(
                   stock=dict(infer_s_per_img=0.5, infer_ratio=1.0, mask_head_s_per_img=0.05,
                              dets_per_image=100, infer_solver={}, train_step_s=1.0,
                              train_ratio=1.0, pos_rois=64, train_solver={},
                              train_peak_mib=512.4, train_peak_ratio=1.0),
                   jfb=dict(train_step_s=1.5, train_ratio=1.5, pos_rois=64,
                            train_solver=dict(fwd_steps=6.0))))
    acc = dict(config='ifr.py', checkpoint='ifr.pth', images=10,
               training_solver=dict(solver='broyden'), shared_s_per_img=0.25,
               rows=[dict(setting='max_iter=15', segm_mAP=0.3, segm_mAP_50=0.5,
                          segm_mAP_delta=0.0, solver_steps_mean=9.04, solver_steps_max=15.0,
                          mask_branch_s_per_img=0.1, mask_branch_ratio_vs_reference=1.0,
                          total_s_per_img=0.35),
                     dict(setting='max_iter=1', segm_mAP=0.28, segm_mAP_50=None,
                          segm_mAP_delta=-0.02, solver_steps_mean=1.0, solver_steps_max=1.0,
                          mask_branch_s_per_img=0.02, mask_branch_ratio_vs_reference=0.2,
                          total_s_per_img=0.27)],
               baseline=dict(checkpoint='/runs/stock/iter_9.pth', segm_mAP=0.25,
                             mask_head_s_per_img=0.01, total_s_per_img=0.26))
    md = markdown(_report(e2e=dict(custom=e2e), accuracy=acc))
    assert "IFR's own test_solver (row `ifr`): {'tol': 0.03}." in md
    assert _table_rows(md, 'Whole Mask R-CNN: custom') == [
        '| stock | 0.500 | 1.00 | 0.050 | 100 | - | 1.000 | 1.00 | 512 | 1.00 | 64 | - |',
        '| jfb | - | - | - | - | - | 1.500 | 1.50 | - | - | 64 | 6.0 / - |',
    ]
    assert 'Backbone + RPN + box head: 0.250 s/img' in md
    assert _table_rows(md, 'Mask AP against the inference solve') == [
        '| max_iter=15 | 30.0 | +0.0 | 50.0 | 9.0 / 15 | 0.100 | 1.00 | 0.350 |',
        '| max_iter=1 | 28.0 | -2.0 | - | 1.0 / 1 | 0.020 | 0.20 | 0.270 |',
        '| stock head (`iter_9.pth`) | 25.0 | | | | mask head 0.010 | | 0.260 |',
    ]
    assert md.index('## Whole Mask R-CNN') < md.index('## Mask AP')


def test_syncs_table_shows_pytorchs_count_on_cuda():
    rows = {'unroll K=2': dict(op_calls=0, op_cuda=0, forward_calls=1, forward_cuda=1,
                               fwd_steps=2.0),
            'training': dict(op_calls=30, op_cuda=None, forward_calls=31, forward_cuda=None,
                             backward_calls=12, backward_cuda=None, fwd_steps=15.0,
                             bwd_steps=6.5)}
    syncs = dict(config='r50.py', weights='random init', rois=100, device='cuda', rows=rows)
    md = markdown(_report(syncs=syncs))
    assert 'synchronisations PyTorch reports' in md
    assert _table_rows(md, 'Host-device synchronisations') == [
        '| unroll K=2 | 0 / 0 | 1 / 1 | - | 2.0 | - |',
        '| training | 30 | 31 | 12 | 15.0 | 6.5 |',
    ]


def test_write_report_writes_json_and_markdown(tmp_path):
    report = _report(extra=object())
    table, stem = write_report(report, str(tmp_path / 'out'), 'cost')
    assert stem == str(tmp_path / 'out' / 'cost')
    assert (tmp_path / 'out' / 'cost.md').read_text() == table + '\n' == markdown(report) + '\n'
    saved = json.loads((tmp_path / 'out' / 'cost.json').read_text())
    assert saved['machine']['load_average'] == [0.5, 0.25, 0.0]
    assert saved['extra'].startswith('<object object')  # unserialisable: its str
