"""Leave the CUDA kernels of the mmcv ops nothing here uses out of mmcv's build.

mmcv 2.1.0 compiles 136 units (77 C++ files and 58 CUDA kernels plus
``cudabind.cpp``), which takes most of the GPU machine's time budget. mmdet
3.3.0 and mmifr call a handful of its ops (``tools/device/mmcv_cuda_ops.txt``,
kept equal to what they import by ``tools/device/mmcv_ops_used.py``). This
removes, from an unpacked mmcv source tree, every ``.cu`` file that no kept op
(and nothing still compiled) reaches, and the CUDA registrations of the removed
kernels in ``cudabind.cpp``. Every C++ file stays, so ``mmcv._ext`` still
defines every function ``mmcv.ops`` loads and the Python package imports as
usual; a removed op fails only when called on a CUDA tensor (``... not
implemented for CUDA``), never at import.

What stays is found by following the sources, not listed by hand:

1. the kept ``mmcv.ops`` modules and the ``mmcv.ops`` modules they import,
   and the ``_ext`` functions those load (``load_ext('_ext', [...])``);
2. from their bindings in ``pybind.cpp``, every function their bodies call,
   and from an ``*_impl`` dispatcher its CUDA implementation
   (``REGISTER_DEVICE_IMPL(impl, CUDA, fn)`` in ``cudabind.cpp``): a ``.cu``
   file defining a reached function is kept;
3. any ``.cu`` file a still-compiled unit calls directly (``nms_rotated.cpp``
   calls ``nms_rotated_cuda``) is kept too, transitively;
4. in ``cudabind.cpp`` the functions that call only-removed code go, and the
   registrations of those functions with them.

The C++ is read with a small top-level parser (comments, literals and
preprocessor lines blanked; function definitions found at brace depth 0 and
inside namespaces), enough for mmcv's ``csrc``; it finally checks that no
remaining function calls a function that only a removed file defined, and
stops with the names otherwise. Standard library only: it runs on the GPU
machine before anything is installed.

Example::

    python tools/device/prune_mmcv_ops.py mmcv-2.1.0 --report prune.json
"""
import argparse
import ast
import json
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set, Tuple

#: The kept ``mmcv.ops`` modules, one per line (``#`` comments).
KEEP_LIST = osp.join(osp.dirname(osp.abspath(__file__)), 'mmcv_cuda_ops.txt')
OPS_DIR = osp.join('mmcv', 'ops')
CSRC = osp.join(OPS_DIR, 'csrc', 'pytorch')
CUDABIND = osp.join(CSRC, 'cuda', 'cudabind.cpp')
PYBIND = osp.join(CSRC, 'pybind.cpp')
#: Macros and attributes written like calls in a function's head.
_NOT_NAMES = {
    '__launch_bounds__', '__attribute__', '__declspec', 'alignas', '__align__', 'decltype',
    'C10_LAUNCH_BOUNDS_0', 'C10_LAUNCH_BOUNDS_1', 'C10_LAUNCH_BOUNDS_2', 'noexcept', 'throw',
    'REGISTER_DEVICE_IMPL'
}
_IDENT = re.compile(r'[A-Za-z_]\w*')
# (cudabind.cpp leaves the ';' off some of them.)
_REGISTER = re.compile(r'REGISTER_DEVICE_IMPL\s*\(\s*(\w+)\s*,\s*CUDA\s*,\s*(\w+)\s*\)\s*;?')
_BINDING = re.compile(r'm\.def\(\s*"(\w+)"\s*,\s*&(\w+)')


class PruneError(RuntimeError):
    """The source tree is not what the pruning understands, or it would break the build."""


# ----------------------------------------------------------------- Python side
def read_keep_list(path: str = KEEP_LIST) -> List[str]:
    """The module names of a keep list (``nms``, ``roi_align`` ...)."""
    with open(path) as f:
        names = [line.split('#', 1)[0].strip() for line in f]
    return [n for n in names if n]


def _module_tree(src: str, module: str) -> ast.Module:
    path = osp.join(src, OPS_DIR, f'{module}.py')
    if not osp.isfile(path):
        raise PruneError(f'mmcv.ops has no module {module!r} ({path} is missing)')
    with open(path) as f:
        return ast.parse(f.read(), path)


def ops_imports(tree: ast.Module) -> Set[str]:
    """The ``mmcv.ops`` modules a module imports (``from .x``, ``from mmcv.ops.x``)."""
    out = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        if node.level == 1:
            out.add(node.module.split('.')[0])
        elif node.level == 0 and node.module.startswith('mmcv.ops.'):
            out.add(node.module.split('.')[2])
    return out


def module_closure(src: str, modules: Iterable[str]) -> Set[str]:
    """``modules`` and every ``mmcv.ops`` module they import, transitively."""
    todo, seen = list(modules), set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(ops_imports(_module_tree(src, module)) - seen)
    return seen


def ext_functions(tree: ast.Module) -> Set[str]:
    """The ``_ext`` functions a module loads (``ext_loader.load_ext('_ext', [...])``)."""
    out = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, 'attr', None) == 'load_ext'
                and len(node.args) == 2 and isinstance(node.args[1], (ast.List, ast.Tuple))):
            out.update(e.value for e in node.args[1].elts if isinstance(e, ast.Constant))
    return out


# -------------------------------------------------------------------- C++ side
def blank_code(text: str) -> str:
    """``text`` with comments, string / char literals and preprocessor lines as spaces.

    Same length and line breaks as ``text``, so positions found in the result
    cut the original.
    """
    out, i, n = list(text), 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and c == '#':
            # A directive, with its backslash-continued lines (macro bodies
            # hold braces that must not count).
            j = i
            while j < n and not (text[j] == '\n' and text[j - 1] != '\\'):
                j += 1
            end = j
        elif text.startswith('//', i):
            end = text.find('\n', i)
            end = n if end < 0 else end
        elif text.startswith('/*', i):
            end = text.find('*/', i + 2)
            end = n if end < 0 else end + 2
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            end = min(j + 1, n)
        else:
            if c == '\n':
                at_line_start = True
            elif not c.isspace():
                at_line_start = False
            i += 1
            continue
        for k in range(i, end):
            if out[k] != '\n':
                out[k] = ' '
        i = end
    return ''.join(out)


def _matching(code: str, open_at: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_at``."""
    depth = 0
    for i in range(open_at, len(code)):
        if code[i] == '{':
            depth += 1
        elif code[i] == '}':
            depth -= 1
            if depth == 0:
                return i
    raise PruneError(f'unbalanced braces from offset {open_at}')


def _strip_template(head: str) -> str:
    head = head.lstrip()
    if not head.startswith('template'):
        return head
    start = head.index('<')
    depth = 0
    for i in range(start, len(head)):
        depth += {'<': 1, '>': -1}.get(head[i], 0)
        if depth == 0:
            return _strip_template(head[i + 1:])
    return head


def function_name(head: str) -> Optional[str]:
    """The function a top-level ``head {...}`` or ``head;`` defines or declares, else ``None``.

    The name stands before the head's last parenthesised group (its parameter
    list), which skips attributes written like calls (``__launch_bounds__(256)``)
    and a ``REGISTER_DEVICE_IMPL(...)`` left without its ``;`` before the head.
    """
    head = _strip_template(head)
    if re.match(r'(struct|class|union|enum|namespace|typedef|using)\b', head):
        return None
    depth, close = 0, None
    for i in range(len(head) - 1, -1, -1):
        if head[i] == ')':
            close = i if close is None else close
            depth += 1
        elif head[i] == '(':
            depth -= 1
            if depth == 0:
                break
    else:
        return None
    if not re.fullmatch(r'(\s|const\b|noexcept\b|override\b|final\b|&)*', head[close + 1:]):
        return None
    before = head[:i]
    match = re.search(r'([A-Za-z_]\w*)\s*$', before)
    if not match or match.group(1) in _NOT_NAMES:
        return None
    if '=' in before[before.rfind(')') + 1:]:
        return None  # an initialised variable
    return match.group(1)


def _type_name(head: str) -> Optional[str]:
    match = re.match(r'(struct|class)\s+([A-Za-z_]\w*)', _strip_template(head))
    return match.group(2) if match else None


@dataclass
class Function:
    """A function (or type) definition: ``name``, its span ``[start, end)`` and the
    identifiers it uses."""
    name: str
    start: int
    end: int
    uses: Set[str]


def parse_functions(code: str, offset: int = 0,
                    declared: Optional[Set[str]] = None) -> List[Function]:
    """The function definitions of blanked ``code`` at top level and in namespaces.

    Args:
        declared (set, optional): filled with the names of the functions
            declared (``head;``) there.
    """
    funcs, i, start, parens = [], 0, 0, 0
    while i < len(code):
        c = code[i]
        if c == '(':
            parens += 1
        elif c == ')':
            parens -= 1
        elif c == ';' and parens == 0:
            name = function_name(code[start:i])
            if name and declared is not None:
                declared.add(name)
            start = i + 1
        elif c == '{' and parens == 0:
            end = _matching(code, i)
            head = code[start:i]
            if re.fullmatch(r'\s*(namespace(\s+[\w:]+)?|extern\s+)\s*', head):
                funcs += parse_functions(code[i + 1:end], offset + i + 1, declared)
            else:
                # A struct / class definition (or specialisation) counts as a
                # definition of its name too: the spconv kernels call functors
                # whose CUDA specialisations other .cu files define.
                name = function_name(head) or _type_name(head)
                if name:
                    # The definition starts after a registration left without its ';'.
                    registrations = list(_REGISTER.finditer(head))
                    first = registrations[-1].end() if registrations else 0
                    first += len(head[first:]) - len(head[first:].lstrip())
                    # A stray ';' after the body belongs to the definition.
                    after = end + 1
                    rest = code[after:]
                    if rest.lstrip().startswith(';'):
                        after += len(rest) - len(rest.lstrip()) + 1
                    funcs.append(Function(name, offset + start + first, offset + after,
                                          set(_IDENT.findall(code[i + 1:end]))))
            i, start = end, end + 1
        i += 1
    return funcs


@dataclass
class Unit:
    """One compiled file: its path (relative to the source root), text and functions."""
    path: str
    text: str
    code: str
    functions: List[Function] = field(default_factory=list)
    declared: Set[str] = field(default_factory=set)

    @classmethod
    def read(cls, src: str, path: str) -> 'Unit':
        with open(osp.join(src, path)) as f:
            text = f.read()
        code = blank_code(text)
        declared: Set[str] = set()
        return cls(path, text, code, parse_functions(code, declared=declared), declared)

    @property
    def is_cuda(self) -> bool:
        return self.path.endswith('.cu')


def read_units(src: str) -> Dict[str, Unit]:
    """Every file mmcv's ``setup.py`` compiles for CUDA, by relative path."""
    folders = [CSRC, osp.join(CSRC, 'cpu'), osp.join(CSRC, 'cuda')]
    paths = [osp.join(d, name) for d in folders if osp.isdir(osp.join(src, d))
             for name in sorted(os.listdir(osp.join(src, d))) if name.endswith(('.cpp', '.cu'))]
    if CUDABIND not in paths or PYBIND not in paths:
        raise PruneError(f'{src} is not an mmcv source tree with CUDA ops ({CUDABIND} and '
                         f'{PYBIND} expected)')
    return {p: Unit.read(src, p) for p in paths}


# ---------------------------------------------------------------------- plan
@dataclass
class Plan:
    """What the pruning keeps and removes."""
    modules: List[str]
    kept: List[str]
    removed: List[str]
    removed_functions: List[str]
    removed_registrations: List[str]
    #: Functions no longer defined once pruned: their registrations go too.
    removed_targets: Set[str] = field(default_factory=set)

    def summary(self) -> dict:
        return dict(modules=self.modules, kept_cu=self.kept, removed_cu=self.removed,
                    removed_cudabind_functions=self.removed_functions,
                    removed_registrations=self.removed_registrations)


def _definers(units: Dict[str, Unit]) -> Dict[str, Set[str]]:
    out: Dict[str, Set[str]] = {}
    for unit in units.values():
        for fn in unit.functions:
            out.setdefault(fn.name, set()).add(unit.path)
    return out


def _cuda_registrations(unit: Unit) -> List[Tuple[str, str, re.Match]]:
    return [(m.group(1), m.group(2), m) for m in _REGISTER.finditer(unit.code)]


def plan_prune(src: str, modules: Iterable[str]) -> Plan:
    """Which ``.cu`` files and ``cudabind.cpp`` entries go, keeping ``modules``' CUDA ops."""
    modules = sorted(module_closure(src, modules))
    ext = set().union(*(ext_functions(_module_tree(src, m)) for m in modules))
    units = read_units(src)
    defs = _definers(units)
    registrations = _cuda_registrations(units[CUDABIND])
    # What cudabind.cpp declares and calls, or registers, must be found defined:
    # else the parser missed a definition and cannot tell whether it goes.
    bind = units[CUDABIND]
    called = set().union(*(fn.uses for fn in bind.functions)) & bind.declared
    undefined = sorted((called | {fn for _, fn, _ in registrations}) - defs.keys())
    if undefined:
        raise PruneError(f'{CUDABIND} calls or registers {undefined}, whose definitions '
                         'were not found')
    bindings = dict(_BINDING.findall(units[PYBIND].text))
    unknown = sorted(ext - set(bindings))
    if unknown:
        raise PruneError(f'pybind.cpp binds no {unknown}')
    cuda_impl: Dict[str, Set[str]] = {}
    for impl, fn, _ in registrations:
        cuda_impl.setdefault(impl, set()).add(fn)
    uses: Dict[str, Set[str]] = {}
    for unit in units.values():
        for fn in unit.functions:
            uses.setdefault(fn.name, set()).update(fn.uses & defs.keys())
    cu_of = {name: {p for p in paths if units[p].is_cuda} for name, paths in defs.items()}

    # 1-2: what the kept ops' bindings reach, CUDA implementations included.
    todo, reached = [bindings[name] for name in ext], set()
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo.extend(uses.get(name, ()) | cuda_impl.get(name, set()))
    kept = set().union(*(cu_of.get(name, set()) for name in reached))
    # 3: what the compiled units call directly (cudabind.cpp is pruned instead).
    compiled = [u for u in units.values() if not u.is_cuda and u.path != CUDABIND]
    todo = [u for u in compiled] + [units[p] for p in kept]
    while todo:
        unit = todo.pop()
        for fn in unit.functions:
            for name in fn.uses:
                for path in cu_of.get(name, ()):
                    if path not in kept:
                        kept.add(path)
                        todo.append(units[path])
    removed = sorted(p for p, u in units.items() if u.is_cuda and p not in kept)
    # 4: cudabind.cpp functions that call only-removed code, then their registrations.
    gone = {name for name, paths in defs.items() if paths and paths <= set(removed)}
    removed_functions = set()
    changed = True
    while changed:
        changed = False
        for fn in units[CUDABIND].functions:
            if fn.name not in removed_functions and fn.uses & gone:
                removed_functions.add(fn.name)
                if defs[fn.name] == {CUDABIND}:
                    gone.add(fn.name)
                changed = True
    targets = removed_functions | gone
    removed_registrations = [f'{impl} -> {fn}' for impl, fn, _ in registrations if fn in targets]
    plan = Plan(modules, sorted(kept), removed, sorted(removed_functions), removed_registrations,
                targets)
    _check(units, plan, gone)
    return plan


def _check(units: Dict[str, Unit], plan: Plan, gone: Set[str]) -> None:
    """Stop if anything still compiled would call what only removed files define."""
    dangling = []
    for unit in units.values():
        if unit.path in plan.removed:
            continue
        for fn in unit.functions:
            if unit.path == CUDABIND and fn.name in plan.removed_functions:
                continue
            for name in sorted(fn.uses & gone):
                dangling.append(f'{unit.path}: {fn.name} calls {name}')
    if dangling:
        raise PruneError('pruning would leave calls to removed code:\n  ' +
                         '\n  '.join(dangling))


def apply_prune(src: str, plan: Plan) -> None:
    """Delete the removed ``.cu`` files and rewrite ``cudabind.cpp``."""
    unit = Unit.read(src, CUDABIND)
    spans = [(fn.start, fn.end) for fn in unit.functions if fn.name in plan.removed_functions]
    spans += [m.span() for _, fn, m in _cuda_registrations(unit) if fn in plan.removed_targets]
    text = unit.text
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + text[end:]
    with open(osp.join(src, CUDABIND), 'w') as f:
        f.write(text)
    for path in plan.removed:
        os.remove(osp.join(src, path))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='an unpacked mmcv source tree (holds mmcv/ops/csrc)')
    parser.add_argument('--keep', default=KEEP_LIST, help='the kept mmcv.ops modules')
    parser.add_argument('--report', help='write what was kept and removed here (JSON)')
    parser.add_argument('--dry-run', action='store_true', help='plan and check, change nothing')
    return parser.parse_args(argv)


def main(argv=None) -> Plan:
    args = parse_args(argv)
    try:
        plan = plan_prune(args.src, read_keep_list(args.keep))
    except PruneError as e:
        sys.exit(f'prune_mmcv_ops: {e}')
    if not args.dry_run:
        apply_prune(args.src, plan)
    if args.report:
        with open(args.report, 'w') as f:
            json.dump(plan.summary(), f, indent=1)
    n_cu = len(plan.kept) + len(plan.removed)
    print(f'[prune_mmcv_ops] {"would keep" if args.dry_run else "kept"} {len(plan.kept)} of '
          f'{n_cu} CUDA kernels for {len(plan.modules)} mmcv.ops modules; removed '
          f'{len(plan.removed_functions)} cudabind.cpp functions and '
          f'{len(plan.removed_registrations)} CUDA registrations', flush=True)
    return plan


if __name__ == '__main__':
    main()
