"""``tools.lib.outputs``: a tool's JSON results."""
import json

from tools.lib.outputs import write_json


def test_write_json_makes_the_folder_and_keeps_the_indent(tmp_path):
    path = tmp_path / 'a' / 'b' / 'result.json'
    write_json(str(path), {'x': [1, 2]}, indent=1)
    text = path.read_text()
    assert json.loads(text) == {'x': [1, 2]}
    assert text == json.dumps({'x': [1, 2]}, indent=1)
