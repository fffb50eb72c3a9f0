"""Where the tools write their results."""
import json
import os
import os.path as osp


def write_json(path: str, obj, indent: int = 2, default=None) -> None:
    """Write ``obj`` as JSON to ``path``, creating its folder first.

    ``default`` is passed to :func:`json.dump` (e.g. ``str`` for values
    JSON has no type for).
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=indent, default=default)


def write_results(stem: str, obj, markdown: str, default=None) -> None:
    """Write a study's results as ``<stem>.json`` (``obj``) and its table as
    ``<stem>.md`` (``markdown``, as given), creating the folder."""
    write_json(stem + '.json', obj, default=default)
    with open(stem + '.md', 'w') as f:
        f.write(markdown)
