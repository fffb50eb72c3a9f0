"""Where the tools write their results."""
import json
import os
import os.path as osp


def write_json(path: str, obj, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path``, creating its folder first."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=indent)
