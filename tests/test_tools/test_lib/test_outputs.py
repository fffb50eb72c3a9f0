"""``tools.lib.outputs``: a tool's JSON results."""
import json

from tools.lib.outputs import write_json, write_results


def test_write_json_makes_the_folder_and_keeps_the_indent(tmp_path):
    path = tmp_path / 'a' / 'b' / 'result.json'
    write_json(str(path), {'x': [1, 2]}, indent=1)
    text = path.read_text()
    assert json.loads(text) == {'x': [1, 2]}
    assert text == json.dumps({'x': [1, 2]}, indent=1)


def test_write_results_writes_the_json_and_the_table_beside_it(tmp_path):
    stem = str(tmp_path / 'study' / 'frontier')
    write_results(stem, {'points': [{'ap': 30.5}]}, '| a |\n| --- |\n')
    assert json.loads((tmp_path / 'study' / 'frontier.json').read_text()) == {
        'points': [{'ap': 30.5}]}
    assert (tmp_path / 'study' / 'frontier.md').read_text() == '| a |\n| --- |\n'


def test_write_json_writes_what_json_has_no_type_for_through_default(tmp_path):
    path = tmp_path / 'r.json'
    write_json(str(path), {'device': object}, default=str)
    assert json.loads(path.read_text()) == {'device': str(object)}
