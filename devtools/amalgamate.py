"""Build the single-file check for checks.d from the package, as SQLite builds sqlite3.c from its sources.

    python -m devtools.amalgamate          # write checks.d/cis_kubernetes.py
    python -m devtools.amalgamate --check  # exit 1 when checks.d/cis_kubernetes.py differs from what the package gives

The output is the package's own code, module by module in dependency order (each module after the ones it imports),
with the package-internal imports removed and the other imports gathered at the top. So that the merge cannot change
what a name means, the build refuses a package where:
- two modules bind the same top-level name to different things (two definitions, or two different imports);
- a top-level name shadows a builtin, or a module reads its own `__name__`, `__file__`, `__package__` or `__spec__`;
- an internal import is anything but `from .module import name` at the top of a module (no module objects, no
  aliases, nothing inside a function), or a module's imports are not all at its top.
Everything outside the package that the output imports must be something the Agent ships
(tests/test_packaging.py checks that).
"""

from __future__ import annotations

import ast
import builtins
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / 'datadog_checks' / 'cis_kubernetes'
PACKAGE = 'datadog_checks.cis_kubernetes'
OUTPUT = ROOT / 'checks.d' / 'cis_kubernetes.py'
FIRST_PARTY = ('datadog_checks',)  # as pyproject.toml's known-first-party, so the output sorts as ruff does
MODULE_DUNDERS = frozenset({'__name__', '__file__', '__package__', '__spec__', '__path__', '__loader__'})
# Where imports leave the order open, the single file reads in the order of the pipeline.
READING_ORDER = (
    '__about__',
    'control',
    'flags',
    'scrubbing',
    'procfs',
    'processes',
    'process_table',
    'files_in_root',
    'distributions',
    'certificates',
    'ca_bundle',
    'judging',
    'wire_names',
    'wire',
    'listeners',
    'wire_verdict',
    'reporting',
    'announcements',
    'findings',
    'config',
    'announcing',
    'check',
)
BANNER = '# ' + '-' * 110
LINE_LENGTH = 120


class BuildError(Exception):
    """The package cannot be merged into one file without changing what some name means."""


@dataclass
class Module:
    name: str  # dotted, relative to the package: '' for the package itself, 'distributions.k3s'
    path: Path
    source: str
    is_package: bool
    docstring: str = ''
    imports: list[ast.stmt] = field(default_factory=list)  # top-level imports of other packages, in order
    guarded_imports: list[str] = field(default_factory=list)  # `try: import ... except ImportError:` blocks
    depends_on: list[str] = field(default_factory=list)  # internal modules, in the order they are imported
    internal_names: dict[str, str] = field(default_factory=dict)  # name -> the internal module it comes from
    body: str = ''  # the source after the import header

    @property
    def relative_path(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def module_name(path: Path, package_dir: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(package_dir).with_suffix('').parts)
    is_package = parts[-1] == '__init__'
    if is_package:
        parts.pop()
    return '.'.join(parts), is_package


def _internal_target(module: Module, node: ast.ImportFrom, package: str) -> str | None:
    """The internal module an ImportFrom names, relative to the package; None when it imports another package."""
    if node.level == 0:
        name = node.module or ''
        if name == package:
            return ''
        return name[len(package) + 1 :] if name.startswith(package + '.') else None
    base = module.name.split('.') if module.name else []
    if not module.is_package:
        base = base[:-1]
    up = node.level - 1
    if up > len(base):
        raise BuildError(f'{module.relative_path}:{node.lineno}: relative import beyond the package')
    base = base[: len(base) - up]
    return '.'.join([*base, *(node.module.split('.') if node.module else [])])


def _is_guarded_import(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Try)
        and all(isinstance(n, ast.Import | ast.ImportFrom) for n in node.body)
        and all(isinstance(n, ast.Import | ast.ImportFrom) for h in node.handlers for n in h.body)
        and not node.orelse
        and not node.finalbody
    )


def read_module(path: Path, package_dir: Path, package: str, modules: set[str]) -> Module:
    name, is_package = module_name(path, package_dir)
    source = path.read_text(encoding='utf-8')
    module = Module(name, path, source, is_package)
    tree = ast.parse(source, str(path))
    lines = source.splitlines(keepends=True)
    body = list(tree.body)
    header_end = 0  # line where the docstring and the import header end
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0].value, 'value', None), str):
        module.docstring = body[0].value.value
        header_end = body.pop(0).end_lineno
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module == '__future__':
            pass
        elif isinstance(node, ast.ImportFrom) and _internal_target(module, node, package) is not None:
            target = _internal_target(module, node, package)
            for alias in node.names:
                submodule = f'{target}.{alias.name}' if target else alias.name
                if alias.asname is not None or alias.name == '*' or submodule in modules:
                    raise BuildError(
                        f'{module.relative_path}:{node.lineno}: import names from a module, unaliased '
                        f'(`from .module import name`), not `{ast.unparse(node)}`'
                    )
                module.internal_names[alias.name] = target
            if target not in module.depends_on:
                module.depends_on.append(target)
        elif isinstance(node, ast.Import) and any(
            alias.name == package or alias.name.startswith(package + '.') for alias in node.names
        ):
            raise BuildError(f'{module.relative_path}:{node.lineno}: `{ast.unparse(node)}` imports a module object')
        elif isinstance(node, ast.Import | ast.ImportFrom):
            module.imports.append(node)
        elif _is_guarded_import(node):
            module.guarded_imports.append(''.join(lines[node.lineno - 1 : node.end_lineno]).rstrip('\n'))
        else:
            break
        header_end = node.end_lineno
    module.body = ''.join(lines[header_end:]).strip('\n')
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and node not in body:
            internal = isinstance(node, ast.ImportFrom) and _internal_target(module, node, package) is not None
            if internal or (isinstance(node, ast.Import) and any(a.name.startswith(package) for a in node.names)):
                raise BuildError(f'{module.relative_path}:{node.lineno}: an internal import inside a function')
        if isinstance(node, ast.Name) and node.id in MODULE_DUNDERS:
            raise BuildError(f'{module.relative_path}:{node.lineno}: `{node.id}` differs in the single file')
    code = [n for n in body if n.lineno > header_end]
    if any(isinstance(n, ast.Import | ast.ImportFrom) or _is_guarded_import(n) for n in code):
        raise BuildError(f'{module.relative_path}: every top-level import must come before the code')
    return module


def top_level_bindings(module: Module) -> dict[str, str]:
    """name -> what it is bound to: 'def <module>' for the module's own, 'import <what>' for another package's."""
    tree = ast.parse(module.body or '')
    bound: dict[str, str] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound[node.name] = f'def {module.relative_path}'
        elif isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        elif isinstance(node, ast.For | ast.With):
            targets = [node.target] if isinstance(node, ast.For) else [i.optional_vars for i in node.items if i]
        for target in targets:
            for name in ast.walk(target) if target is not None else ():
                if isinstance(name, ast.Name):
                    bound[name.id] = f'def {module.relative_path}'
    for node in module.imports:
        for alias in node.names:
            if isinstance(node, ast.ImportFrom):
                bound[alias.asname or alias.name] = f'import {node.module}.{alias.name}'
            else:
                bound[alias.asname or alias.name.split('.')[0]] = f'import {alias.name if alias.asname else ""}'
    for block in module.guarded_imports:
        for node in ast.walk(ast.parse(block)):
            for alias in getattr(node, 'names', []) if isinstance(node, ast.Import | ast.ImportFrom) else []:
                bound[alias.asname or alias.name] = f'guarded {block}'
    return bound


def check_names(modules: list[Module]) -> None:
    owners: dict[str, tuple[str, str]] = {}
    for module in modules:
        for name, meaning in top_level_bindings(module).items():
            if hasattr(builtins, name) and not name.startswith('__'):
                raise BuildError(f'{module.relative_path}: the top-level name `{name}` shadows a builtin')
            if name in owners and owners[name][1] != meaning:
                raise BuildError(
                    f'`{name}` is defined at the top of both {owners[name][0]} and {module.relative_path}: '
                    'the single file would merge them; rename one'
                )
            owners.setdefault(name, (module.relative_path, meaning))
        for name, source in module.internal_names.items():
            defined = top_level_bindings(_find(modules, source))
            if name not in defined:
                raise BuildError(f'{module.relative_path} imports `{name}`, which {source or PACKAGE} does not define')


def _find(modules: list[Module], name: str) -> Module:
    for module in modules:
        if module.name == name:
            return module
    raise BuildError(f'no module {name!r} in the package')


def dependency_order(modules: dict[str, Module]) -> list[Module]:
    """Each module after everything it imports, in the pipeline's order where imports leave a choice.

    Depth first from the modules of READING_ORDER (a package with its modules), then from the package's __init__:
    a module not listed there still comes in, after what it imports.
    """
    ordered: list[Module] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 'done':
            return
        if state.get(name) == 'visiting':
            raise BuildError('circular import: ' + ' -> '.join([*chain, name]))
        if name not in modules:
            raise BuildError(f'{chain[-1] or PACKAGE} imports {name!r}, which is not a module of the package')
        state[name] = 'visiting'
        parents = [name.rsplit('.', 1)[0]] if '.' in name else []  # a submodule runs its package's __init__ first
        for dependency in [*parents, *modules[name].depends_on]:
            visit(dependency, (*chain, name))
        state[name] = 'done'
        ordered.append(modules[name])

    for listed in READING_ORDER:  # a package listed there brings its modules with it
        for name in sorted(m for m in modules if m == listed or m.startswith(listed + '.')):
            visit(name, ('',))
    visit('', ())
    return ordered


def _import_sort_key(node: ast.stmt) -> tuple:
    top = (node.module if isinstance(node, ast.ImportFrom) else node.names[0].name).split('.')[0]
    section = 2 if top in FIRST_PARTY else 0 if top in sys.stdlib_module_names else 1
    straight = isinstance(node, ast.Import)
    name = node.names[0].name if straight else node.module
    return section, not straight, name.lower(), name


def _member_key(name: str) -> tuple:
    # ruff's isort order-by-type: CONSTANTS, then Classes, then everything else
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return kind, name


def render_imports(modules: list[Module]) -> str:
    straight: dict[str, ast.Import] = {}
    members: dict[str, set[str]] = {}
    for module in modules:
        for node in module.imports:
            if isinstance(node, ast.ImportFrom):
                if node.module == '__future__':
                    continue
                if any(alias.asname for alias in node.names):
                    raise BuildError(f'{module.relative_path}: aliased imports are not merged: {ast.unparse(node)}')
                members.setdefault(node.module, set()).update(alias.name for alias in node.names)
            else:
                for alias in node.names:
                    straight[ast.unparse(ast.alias(alias.name, alias.asname))] = ast.Import(names=[alias])
    nodes: list[ast.stmt] = list(straight.values())
    nodes += [
        ast.ImportFrom(module=m, names=[ast.alias(n) for n in sorted(ns, key=_member_key)], level=0)
        for m, ns in members.items()
    ]
    nodes.sort(key=_import_sort_key)
    out, section = [], None
    for node in nodes:
        current = _import_sort_key(node)[0]
        if section is not None and current != section:
            out.append('')
        section = current
        out.append(ast.unparse(node))
    return '\n'.join(out)


def _comment(text: str) -> list[str]:
    lines = []
    for line in textwrap.dedent(text).strip('\n').splitlines():
        wrapped = textwrap.wrap(line, LINE_LENGTH - 2, subsequent_indent=' ' * (len(line) - len(line.lstrip())))
        lines += [f'# {part}'.rstrip() for part in wrapped] or ['#']
    return lines


# Subpackages that run outside the Agent, with their own dependencies: never part of the check's file.
NOT_THE_CHECK = ('assets',)  # the Datadog-side set-up (datadog-api-client)


def load_package(package_dir: Path = PACKAGE_DIR, package: str = PACKAGE) -> dict[str, Module]:
    paths = sorted(p for p in package_dir.rglob('*.py') if p.relative_to(package_dir).parts[0] not in NOT_THE_CHECK)
    names = {module_name(path, package_dir)[0] for path in paths}
    modules = [read_module(path, package_dir, package, names) for path in paths]
    return {module.name: module for module in modules}


def build(package_dir: Path = PACKAGE_DIR, package: str = PACKAGE) -> str:
    modules = dependency_order(load_package(package_dir, package))
    check_names(modules)
    version = next((m for m in modules if m.name == '__about__'), None)
    about = f' {ast.literal_eval(version.body.split("=", 1)[1].strip())}' if version else ''
    included = [m for m in modules if m.body and m.name != '']
    docstring = '\n'.join(
        [
            f'"""CIS Kubernetes 1.2.31 check for the Datadog Agent{about}, as one file for checks.d.',
            '',
            f'Built by `python -m devtools.amalgamate` from the package {package_dir.relative_to(ROOT).as_posix()}: '
            'do not edit this file;',
            'change the package and build again. Its modules, in order:',
            *[f'    {m.relative_path}' for m in included],
            '"""',
        ]
    )
    parts = [docstring, 'from __future__ import annotations', render_imports(modules)]
    parts += list(dict.fromkeys(block for m in modules for block in m.guarded_imports))
    text = '\n\n'.join(parts) + '\n'
    for module in included:
        banner = [
            BANNER,
            f'# {module.relative_path}',
            *(_comment(module.docstring) if module.docstring else []),
            BANNER,
        ]
        text += '\n\n' + '\n'.join(banner) + '\n\n\n' + module.body + '\n'
    return text


def main(argv: list[str]) -> int:
    try:
        text = build()
    except BuildError as e:
        print(f'cannot build {OUTPUT.relative_to(ROOT)}: {e}', file=sys.stderr)
        return 2
    current = OUTPUT.read_text(encoding='utf-8') if OUTPUT.exists() else None
    if '--check' in argv:
        if current != text:
            print(f'{OUTPUT.relative_to(ROOT)} is stale: run python -m devtools.amalgamate')
            return 1
        return 0
    if current != text:
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(text, encoding='utf-8')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
