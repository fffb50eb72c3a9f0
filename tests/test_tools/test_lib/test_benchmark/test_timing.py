"""Ratios against the stock row (:func:`tools.lib.benchmark.timing.add_ratios`)."""
import pytest

from tools.lib.benchmark.timing import add_ratios


def test_ratios_only_where_both_rows_have_a_non_zero_stock_value():
    res = dict(infer_s=3.0, train_s=4.0, train_peak_mib=5.0)
    add_ratios(res, dict(infer_s=2.0, train_peak_mib=0.0),
               dict(infer_s='infer', train_s='train', train_peak_mib='train_peak'))
    assert res['infer_ratio'] == pytest.approx(1.5)
    assert 'train_ratio' not in res  # no stock training time
    assert 'train_peak_ratio' not in res  # a 0 MiB stock peak
