"""``tools/dataset_converters/split_coco_by_image_id.py``: a deterministic split by image id."""
import pytest
from tool_runs import load_tool

tool = load_tool('tools/dataset_converters/split_coco_by_image_id.py')


def _coco(ids):
    return dict(
        info={'v': 1},
        categories=[dict(id=1, name='a'), dict(id=2, name='b')],
        images=[dict(id=i, file_name=f'{i}.jpg') for i in ids],
        annotations=[dict(id=10 * i + k, image_id=i, category_id=1) for i in ids for k in range(2)])


def test_every_fifth_image_by_sorted_id_goes_to_val():
    ids = [30, 3, 12, 7, 50, 1, 9, 44, 21, 18]  # sorted: 1 3 7 9 12 18 21 30 44 50
    train, val = tool.split_by_image_id(_coco(ids), every=5)
    assert sorted(img['id'] for img in val['images']) == [12, 50]
    assert sorted(img['id'] for img in train['images']) == [1, 3, 7, 9, 18, 21, 30, 44]
    # Annotations follow their images; categories and other keys are kept whole.
    assert sorted({a['image_id'] for a in val['annotations']}) == [12, 50]
    assert len(train['annotations']) == 16 and len(val['annotations']) == 4
    for split in (train, val):
        assert split['categories'] == _coco(ids)['categories'] and split['info'] == {'v': 1}


@pytest.mark.parametrize('every', [1, 0, 2.5, True])
def test_bad_every_is_named(every):
    with pytest.raises(ValueError, match=f'every must be an int >= 2, got {every!r}'):
        tool.split_by_image_id(_coco([1, 2]), every=every)
