"""Which ``mmcv.ops`` modules installed packages use: the keep list of the GPU build.

``tools/device/prune_mmcv_ops.py`` compiles only the CUDA kernels of the
modules in ``tools/device/mmcv_cuda_ops.txt``. This derives that list from the
sources of the packages that run on the GPU machine (mmdet 3.3.0 with its
configs, mmifr), read with ``ast``:

- ``from mmcv.ops import X`` (X mapped to its module through
  ``mmcv/ops/__init__.py``), ``from mmcv.ops.m import ...``,
  ``import mmcv.ops.m`` and ``mmcv.ops.X`` attribute chains;
- every string that names an ``mmcv.ops`` export or registry entry: configs
  build ops by name (``roi_layer=dict(type='RoIAlign')``,
  ``conv_cfg=dict(type='DCNv2')``, ``nms=dict(type='soft_nms')``), which
  no import shows. Strings that merely equal such a name (``'Linear'``) only
  keep more, never less.

Run here, where mmdet and mmcv are installed::

    python tools/device/mmcv_ops_used.py          # print the list
    python tools/device/mmcv_ops_used.py --check  # exit 1 if the keep list differs
"""
import argparse
import ast
import importlib.util
import os
import os.path as osp
import sys
from typing import Dict, Iterable, Set

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from prune_mmcv_ops import KEEP_LIST, OPS_DIR, read_keep_list  # noqa: E402

#: Packages whose sources are scanned by default: what runs on the GPU machine.
PACKAGES = ('mmdet', 'mmifr')


def _parse(path: str) -> ast.Module:
    with open(path, encoding='utf-8') as f:
        return ast.parse(f.read(), path)


def ops_names(mmcv_root: str) -> Dict[str, str]:
    """``{name: module}`` of what ``mmcv.ops`` exports and registers by name."""
    ops = osp.join(mmcv_root, OPS_DIR)
    names = {}
    for node in _parse(osp.join(ops, '__init__.py')).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = node.module.split('.')[0]
    for file in sorted(os.listdir(ops)):
        if not file.endswith('.py') or file == '__init__.py':
            continue
        module = file[:-3]
        for node in ast.walk(_parse(osp.join(ops, file))):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                for dec in node.decorator_list:
                    if isinstance(dec, ast.Call) and getattr(dec.func, 'attr',
                                                             None) == 'register_module':
                        for name in _registered_names(dec) or [node.name]:
                            names.setdefault(name, module)
    return names


def _registered_names(call: ast.Call) -> list:
    values = list(call.args[:1]) + [k.value for k in call.keywords if k.arg == 'name']
    out = []
    for value in values:
        elts = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
        out += [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return out


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return '.'.join(reversed(parts))


def used_in(tree: ast.Module, names: Dict[str, str], modules: Set[str]) -> Set[str]:
    """The ``mmcv.ops`` modules one parsed file uses."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == 'mmcv.ops':
                out.update(names[a.name] for a in node.names if a.name in names)
            elif node.module.startswith('mmcv.ops.'):
                out.add(node.module.split('.')[2])
        elif isinstance(node, ast.Import):
            out.update(a.name.split('.')[2] for a in node.names
                       if a.name.startswith('mmcv.ops.'))
        elif isinstance(node, ast.Attribute):
            chain = _dotted(node).split('.')
            if chain[:2] == ['mmcv', 'ops'] and len(chain) > 2:
                out.add(chain[2] if chain[2] in modules else names.get(chain[2], chain[2]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value in names:
            out.add(names[node.value])
    return out & modules


def package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f'mmcv_ops_used: package {name!r} is not installed')
    return list(spec.submodule_search_locations)[0]


def used_modules(package_dirs: Iterable[str], mmcv_root: str) -> Set[str]:
    """Every ``mmcv.ops`` module the ``.py`` files under ``package_dirs`` use."""
    names = ops_names(mmcv_root)
    modules = {f[:-3] for f in os.listdir(osp.join(mmcv_root, OPS_DIR)) if f.endswith('.py')}
    modules.discard('__init__')
    out = set()
    for top in package_dirs:
        # followlinks: an editable install's .mim/configs links to the checkout.
        for folder, dirs, files in os.walk(top, followlinks=True):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            for file in files:
                if file.endswith('.py'):
                    out |= used_in(_parse(osp.join(folder, file)), names, modules)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--packages', nargs='+', default=list(PACKAGES))
    parser.add_argument('--check', action='store_true',
                        help=f'exit 1 unless {osp.basename(KEEP_LIST)} lists exactly these')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    mmcv_root = osp.dirname(package_dir('mmcv'))
    used = sorted(used_modules([package_dir(p) for p in args.packages], mmcv_root))
    print('\n'.join(used))
    if not args.check:
        return 0
    listed = sorted(read_keep_list())
    if listed == used:
        print(f'[mmcv_ops_used] {KEEP_LIST} lists exactly these', file=sys.stderr)
        return 0
    print(f'[mmcv_ops_used] {KEEP_LIST} differs: missing {sorted(set(used) - set(listed))}, '
          f'not used {sorted(set(listed) - set(used))}', file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
