"""Write the demo model-zoo table from the seed studies' result files.

Reads ``configs/ifr/demo/model_zoo_demo.yml`` (one row per framework of the paper) and the result
files it names in ``docs/results/``, and writes ``docs/results/model_zoo_demo.json``, its Markdown
(``.md``), the table block of ``configs/ifr/README.md`` and the summary block of ``README.md``;
prints the table and the summary sentence. ``--check`` writes nothing and fails if any of them is
out of date.

Example::

    python tools/write_model_zoo_table.py            # after a seed study changed a result file
    python tools/write_model_zoo_table.py --check
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools.lib.model_zoo_table import (SUMMARY_BLOCK, TABLE_BLOCK, build_table,  # noqa: E402
                                       embed, summary_sentence, table_markdown)
from tools.lib.models import resolve_path  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--manifest', default='configs/ifr/demo/model_zoo_demo.yml')
    parser.add_argument('--results-dir', default='docs/results')
    parser.add_argument('--out', default='docs/results/model_zoo_demo',
                        help='output stem (.json, .md)')
    parser.add_argument('--readme', default='configs/ifr/README.md',
                        help='the file whose table block is rewritten')
    parser.add_argument('--summary-readme', default='README.md',
                        help='the file whose summary block is rewritten')
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 1 if an output is out of date')
    return parser.parse_args(argv)


def outputs(args) -> dict:
    """``{path: text}`` of everything the tool writes."""
    table = build_table(args.manifest, args.results_dir)
    markdown, summary = table_markdown(table), summary_sentence(table) + '\n'
    out = {
        resolve_path(args.out + '.json'): json.dumps(table, indent=2) + '\n',
        resolve_path(args.out + '.md'): f'# The demo model-zoo table\n\n{markdown}\n{summary}',
    }
    for path, block, name in ((args.readme, markdown, TABLE_BLOCK),
                              (args.summary_readme, summary, SUMMARY_BLOCK)):
        path = resolve_path(path)
        # Both blocks may live in one file: build on what is written already.
        text = out.get(path)
        if text is None:
            with open(path) as f:
                text = f.read()
        out[path] = embed(text, block, name)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    stale = []
    for path, text in outputs(args).items():
        current = open(path).read() if osp.exists(path) else None
        if args.check:
            if current != text:
                stale.append(path)
        elif current != text:
            with open(path, 'w') as f:
                f.write(text)
            print(f'wrote {path}', file=sys.stderr)
    if stale:
        print('out of date (run python tools/write_model_zoo_table.py): ' + ', '.join(stale),
              file=sys.stderr)
        return 1
    if not args.check:
        with open(resolve_path(args.out + '.md')) as f:
            print(f.read())
    return 0


if __name__ == '__main__':
    sys.exit(main())
