"""``tools/analysis_tools/boxinst_color_prior.py``: BoxInst's colour prior counted against
the ground truth, on hand-made images and a tiny generated dataset."""
import json

import numpy as np
import pytest
from tool_runs import load_tool

from tools.lib.shapes_data import make_dataset

pytest.importorskip('skimage')
tool = load_tool('tools/analysis_tools/boxinst_color_prior.py')


@pytest.fixture(scope='module')
def preprocessor():
    from mmdet.models.data_preprocessors import BoxInstDataPreprocessor
    return BoxInstDataPreprocessor(mask_stride=4, pairwise_size=3, pairwise_dilation=2)


def _two_halves(object_rgb, background_rgb, size=64):
    image = np.zeros((size, size, 3), np.uint8)
    image[:, :size // 2] = object_rgb
    image[:, size // 2:] = background_rgb
    mask = np.zeros((1, size, size), np.uint8)
    mask[0, :, :size // 2] = 1
    return image, mask, np.array([[0, 0, size - 1, size - 1]], np.float32)


def test_a_uniform_object_on_a_different_colour_is_learned_without_error(preprocessor):
    image, mask, box = _two_halves((200, 30, 30), (30, 200, 30))
    counts = tool.pair_counts(image, mask, box, [0.3], preprocessor)
    assert counts['same'] > 0
    assert counts['same_flagged'][0] == counts['same']  # every on-object pair is similar
    assert counts['flagged_cross'][0] == 0  # red and green are never similar


def test_an_object_coloured_as_its_background_teaches_wrong_pairs(preprocessor):
    image, mask, box = _two_halves((120, 120, 120), (120, 120, 120))
    counts = tool.pair_counts(image, mask, box, [0.3], preprocessor)
    assert counts['flagged_cross'][0] > 0
    assert counts['flagged'][0] > counts['same_flagged'][0]


def test_the_matched_threshold_reaches_the_reference_recall_within_its_error():
    ref = [dict(thresh=0.3, recall=0.20, error=0.025)]
    stats = [dict(thresh=0.02, recall=0.30, error=0.010),
             dict(thresh=0.05, recall=0.22, error=0.008),
             dict(thresh=0.1, recall=0.10, error=0.006),
             dict(thresh=0.3, recall=0.02, error=0.003)]
    assert tool.matched_threshold(stats, ref, 0.3)[0]['thresh'] == 0.05
    # No threshold reaches the recall: the most recall within the error.
    low = [dict(s, recall=s['recall'] / 10) for s in stats]
    assert tool.matched_threshold(low, ref, 0.3)[0]['thresh'] == 0.02
    # Every threshold errs more: none.
    assert tool.matched_threshold([dict(s, error=0.5) for s in stats], ref, 0.3)[0] is None


def test_a_dataset_matched_against_itself_keeps_the_reference_threshold(tmp_path):
    root = tmp_path / 'shapes'
    make_dataset(str(root), num_train=2, num_val=0, size=(96, 96), seed=0, verbose=False)
    data = f"{root / 'annotations' / 'instances_train.json'}:{root / 'train'}"
    out = tmp_path / 'prior'
    assert tool.main(['--data', f'a={data}', f'b={data}', '--match', 'a', '--reference', 'b',
                      '--thresholds', '0.1', '0.3', '0.5', '--out', str(out)]) == 0
    result = json.loads((tmp_path / 'prior.json').read_text())
    assert result['datasets']['a'] == result['datasets']['b']
    recalls = [s['recall'] for s in result['datasets']['a']]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] > 0
    assert result['matched']['thresh'] == 0.3


@pytest.mark.parametrize('argv, message', [
    (['--data', 'shapes'], 'NAME=ANN_FILE:IMAGE_DIR'),
    (['--data', 'a=x.json:imgs', '--match', 'a'], 'go together'),
    (['--data', 'a=x.json:imgs', '--match', 'a', '--reference', 'b'], "'b' is not one of"),
    (['--data', 'a=x.json:imgs', '--thresholds', '0', '0.3'], 'must lie in (0, 1]'),
])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        tool.parse_args(argv)
    assert message in capsys.readouterr().err
