"""Architecture rules for the ``clust`` package, checked statically (``ast``; nothing imported).

Each rule is one test that lists every violation it finds at once, by package:

``import cycles``
    No cycle between clust modules. Every import counts, inside functions too (a
    function-level import is still a dependency), and so does a clust module named by
    a string in a module that calls ``importlib.import_module`` (a package's lazy,
    PEP 562 exports); imports under ``if TYPE_CHECKING:`` do not. ``from p import n``
    depends on ``p.n`` when that is a module, else on ``p`` itself (its ``__init__``,
    which re-exports ``n``). Importing ``a.b.c`` depends on ``a.b.c`` only, not on the
    packages ``a`` and ``a.b`` Python initialises on the way: so a package ``__init__``
    importing its own submodules is no cycle by itself, but a submodule taking a name
    back through that ``__init__`` is one.
``private imports``
    No private name (one leading underscore, not a dunder) crosses a module boundary
    by import: ``from x import _name`` or ``x._name`` where ``x`` is another clust
    module. A private module (``p/_name.py``) may be imported only from inside ``p``.
``private attributes``
    A heuristic: ``obj._name`` in module M, where ``obj`` is not ``self``, ``cls`` or
    ``super()`` and M defines no ``_name`` itself (as a class attribute or method, an
    attribute assignment ``x._name = ...``, or an entry of ``__slots__``), reaches
    into another module's private state. Without types it cannot tell whose
    ``_name`` it is, so a private name M also defines passes.
``module size``
    No module over ``MAX_LINES`` physical lines.
``testing imports nothing of clust``
    ``clust.testing`` imports nothing else of clust, not even for type checking: it
    stays an independent witness of the wire protocol.
``layers``
    A package imports only from its own layer and the layers below it (``LAYERS``,
    lowest first, as docs/architecture.md draws them); imports for type checking
    count too, lazy ones as well. The top-level ``clust`` package and
    ``clust.__main__`` sit above every layer.

Exceptions are never made silently: they are the commented lists below.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "clust"
MAX_LINES = 600

# The layers, lowest first: each may import from itself and those before it.
# clust.testing is left out: it imports nothing of clust (its own rule).
LAYERS = (
    "messages",
    "protocol",
    "client",
    "store",
    "usage",
    "tools",
    "conversation",
    "cli",
)

# Private attributes that are public API despite the underscore. Each entry is the
# attribute name and why it is allowed.
ALLOWED_PRIVATE_ATTRIBUTES: dict[str, str] = {
    "_mapping": "SQLAlchemy's Row._mapping is public API (underscored so that it cannot "
    "clash with a column name)",
}

# Modules allowed over MAX_LINES, with the reason.
ALLOWED_LONG_MODULES: dict[str, str] = {}


@dataclass
class Module:
    """One source file of the package, parsed."""

    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    lines: int

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Import:
    """One dependency of a module on another module of the package."""

    target: str
    line: int
    names: tuple[str, ...]  # the names taken by ``from target import ...``; () otherwise
    type_checking: bool
    lazy: bool = False  # named by a string for importlib.import_module


@dataclass
class Codebase:
    """Every module of a package, keyed by dotted name."""

    root: Path
    modules: dict[str, Module] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> Codebase:
        codebase = cls(root)
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root.parent).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            source = path.read_text(encoding="utf-8")
            codebase.modules[".".join(parts)] = Module(
                ".".join(parts), path, is_package, ast.parse(source), len(source.splitlines())
            )
        return codebase

    def where(self, module: Module, line: int) -> str:
        return f"{module.path.relative_to(self.root.parent)}:{line}"

    def imports(self, module: Module) -> list[Import]:
        """The package's modules ``module`` depends on, one entry per import."""
        found: list[Import] = []
        calls_import_module = False
        for node, type_checking in _walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in self.modules:
                        found.append(Import(alias.name, node.lineno, (), type_checking))
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(module, node)
                if base not in self.modules:
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in self.modules:
                        found.append(Import(sub, node.lineno, (), type_checking))
                    else:
                        found.append(Import(base, node.lineno, (alias.name,), type_checking))
            elif isinstance(node, ast.Attribute) and node.attr == "import_module":
                calls_import_module = True
        if calls_import_module:
            for node, type_checking in _walk(module.tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and node.value in self.modules
                    and node.value != module.name
                ):
                    found.append(Import(node.value, node.lineno, (), type_checking, lazy=True))
        return [item for item in found if item.target != module.name]

    def _absolute(self, module: Module, node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        parts = module.package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1])
        return f"{base}.{node.module}" if node.module else base

    def module_aliases(self, module: Module) -> dict[str, str]:
        """Names bound in ``module`` to a module of the package, by import."""
        aliases: dict[str, str] = {}
        for node, _ in _walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name not in self.modules:
                        continue
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        aliases[top] = top
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(module, node)
                for alias in node.names:
                    if f"{base}.{alias.name}" in self.modules:
                        aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
        return aliases


def _walk(tree: ast.AST) -> Iterator[tuple[ast.AST, bool]]:
    """Every node with whether it sits under ``if TYPE_CHECKING:``."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, type_checking = stack.pop()
        yield node, type_checking
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((child, True) for child in node.body)
            stack.extend((child, type_checking) for child in node.orelse)
            stack.append((node.test, type_checking))
            continue
        stack.extend((child, type_checking) for child in ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_module_owner(name: str) -> str | None:
    """The package a private module belongs to, for ``p._m`` (or ``p._m.x``)."""
    parts = name.split(".")
    for index, part in enumerate(parts):
        if _is_private(part):
            return ".".join(parts[:index])
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# -- the rules: each returns {package: [violation, ...]} ---------------------------------


Violations = dict[str, list[str]]


def _top_package(codebase: Codebase, name: str) -> str:
    """``clust.store.migrations.env`` -> ``clust.store``: the layer a module is in."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def import_cycles(codebase: Codebase) -> Violations:
    """One entry per group of modules that import each other: its cycles, each as a
    chain ``a -> b -> a`` with where each of its imports is, and the imports all of
    them take (breaking one of those breaks every cycle listed)."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)  # source -> target -> where
    for module in codebase.modules.values():
        for item in codebase.imports(module):
            if not item.type_checking:
                graph[module.name].setdefault(item.target, codebase.where(module, item.line))
    found: Violations = defaultdict(list)
    for component in _strongly_connected(graph):
        # One shortest cycle through each import of the group, shortest first; a cycle
        # is listed only if it takes an import no listed cycle takes.
        candidates = sorted(
            {
                _rotated((source, *_shortest_path(graph, target, source, component)))
                for source in component
                for target in graph[source]
                if target in component
            },
            key=lambda cycle: (len(cycle), cycle),
        )
        cycles: list[tuple[str, ...]] = []
        covered: set[tuple[str, str]] = set()
        common: set[tuple[str, str]] | None = None
        for cycle in candidates:
            edges = set(_edges(cycle))
            if not edges <= covered:
                covered |= edges
                common = edges if common is None else common & edges
                cycles.append(cycle)
        shared = ""
        if len(cycles) > 1 and common:
            takes = ", ".join(f"{a} -> {b} ({graph[a][b]})" for a, b in sorted(common))
            shared = f"; all of them take {takes}"
        lines = [f"{len(component)} modules, {len(cycles)} cycle(s){shared}:"]
        for cycle in sorted(cycles):
            places = ", ".join(graph[a][b] for a, b in _edges(cycle))
            lines.append(f"      {' -> '.join((*cycle, cycle[0]))}")
            lines.append(f"        ({places})")
        found[_top_package(codebase, min(component))].append("\n".join(lines))
    return found


def _strongly_connected(graph: dict[str, dict[str, str]]) -> list[set[str]]:
    """Tarjan's components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _shortest_path(
    graph: dict[str, dict[str, str]], start: str, goal: str, within: set[str]
) -> tuple[str, ...]:
    """Breadth first, ``start`` ... up to but not including ``goal``."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    for node in queue:
        if node == goal:
            break
        for target in sorted(graph.get(node, {})):
            if target in within and target not in previous:
                previous[target] = node
                queue.append(target)
    path: list[str] = []
    node_or_none = previous[goal]
    while node_or_none is not None:
        path.append(node_or_none)
        node_or_none = previous[node_or_none]
    return tuple(reversed(path))


def _edges(cycle: tuple[str, ...]) -> list[tuple[str, str]]:
    return list(zip(cycle, (*cycle[1:], cycle[0]), strict=True))


def _rotated(cycle: tuple[str, ...]) -> tuple[str, ...]:
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]


def private_imports(codebase: Codebase) -> Violations:
    found: Violations = defaultdict(list)
    for module in codebase.modules.values():
        package = _top_package(codebase, module.name)
        for item in codebase.imports(module):
            owner = _private_module_owner(item.target)
            if owner is not None and not _inside(module.name, owner):
                found[package].append(
                    f"{codebase.where(module, item.line)}: imports private module {item.target}"
                )
            for name in item.names:
                if _is_private(name):
                    found[package].append(
                        f"{codebase.where(module, item.line)}: from {item.target} import {name}"
                    )
        aliases = codebase.module_aliases(module)
        for node, _ in _walk(module.tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                target = _module_of(node.value, aliases, codebase)
                if target is not None and target != module.name:
                    found[package].append(
                        f"{codebase.where(module, node.lineno)}: {target}.{node.attr}"
                    )
    return found


def _module_of(node: ast.expr, aliases: dict[str, str], codebase: Codebase) -> str | None:
    """The package module an expression like ``name`` or ``name.sub`` stands for."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        parent = _module_of(node.value, aliases, codebase)
        if parent is not None and f"{parent}.{node.attr}" in codebase.modules:
            return f"{parent}.{node.attr}"
    return None


def private_attributes(codebase: Codebase) -> Violations:
    found: Violations = defaultdict(list)
    for module in codebase.modules.values():
        defined = _defined_private_names(module.tree)
        aliases = codebase.module_aliases(module)
        for node, _ in _walk(module.tree):
            if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
                continue
            if node.attr in defined or node.attr in ALLOWED_PRIVATE_ATTRIBUTES:
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and _is_name(owner.func, "super"):
                continue
            if _module_of(owner, aliases, codebase) is not None:
                continue  # a module's private name: the private imports rule reports it
            found[_top_package(codebase, module.name)].append(
                f"{codebase.where(module, node.lineno)}: {ast.unparse(node)}"
            )
    return found


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _defined_private_names(tree: ast.Module) -> set[str]:
    """Private names a module defines as class members, attributes or ``__slots__``."""
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    defined.add(statement.name)
                elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = (
                        statement.targets
                        if isinstance(statement, ast.Assign)
                        else [statement.target]
                    )
                    for target in targets:
                        defined.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
                        if _is_name(target, "__slots__") and statement.value is not None:
                            defined.update(
                                n.value
                                for n in ast.walk(statement.value)
                                if isinstance(n, ast.Constant) and isinstance(n.value, str)
                            )
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            defined.add(node.attr)
    return {name for name in defined if _is_private(name)}


def long_modules(codebase: Codebase) -> Violations:
    found: Violations = defaultdict(list)
    for module in codebase.modules.values():
        if module.lines > MAX_LINES and module.name not in ALLOWED_LONG_MODULES:
            where = module.path.relative_to(codebase.root.parent)
            found[_top_package(codebase, module.name)].append(
                f"{where}: {module.lines} lines (max {MAX_LINES})"
            )
    return found


def clust_imports_in_testing(codebase: Codebase) -> Violations:
    testing = f"{codebase.root.name}.testing"
    found: Violations = defaultdict(list)
    for module in codebase.modules.values():
        if not _inside(module.name, testing):
            continue
        for item in codebase.imports(module):
            if not _inside(item.target, testing):
                found[testing].append(f"{codebase.where(module, item.line)}: {item.target}")
    return found


def layer_violations(codebase: Codebase) -> Violations:
    root = codebase.root.name
    rank = {f"{root}.{name}": index for index, name in enumerate(LAYERS)}
    top = len(LAYERS)  # the root package and its __main__
    rank[root] = rank[f"{root}.__main__"] = top
    found: Violations = defaultdict(list)
    for module in codebase.modules.values():
        source = _top_package(codebase, module.name)
        if source not in rank:
            continue
        for item in codebase.imports(module):
            target = _top_package(codebase, item.target)
            if rank.get(target, -1) > rank[source]:
                found[source].append(
                    f"{codebase.where(module, item.line)}: {source} imports {item.target}, "
                    "a layer above it"
                )
    return found


RULES: dict[str, Callable[[Codebase], Violations]] = {
    "import cycles": import_cycles,
    "private imports": private_imports,
    "private attributes": private_attributes,
    "module size": long_modules,
    "testing imports nothing of clust": clust_imports_in_testing,
    "layers": layer_violations,
}


def report(rule: str, violations: Violations) -> str:
    """Every violation of one rule, grouped by package."""
    count = sum(len(items) for items in violations.values())
    lines = [f"{rule}: {count} violation(s)"]
    for package in sorted(violations):
        lines.append(f"  {package}:")
        lines.extend(f"    {item}" for item in sorted(violations[package]))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def clust_codebase() -> Codebase:
    return Codebase.load(PACKAGE_ROOT)


@pytest.mark.parametrize("rule", RULES)
def test_rule(rule: str, clust_codebase: Codebase) -> None:
    violations = {package: items for package, items in RULES[rule](clust_codebase).items()}
    if any(violations.values()):
        pytest.fail(report(rule, violations), pytrace=False)


# -- the checker itself, on a small package written for it --------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Codebase:
    root = tmp_path / "clust"
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return Codebase.load(root)


def _all(violations: Violations) -> list[str]:
    return sorted(item for items in violations.values() for item in items)


def test_cycles_are_found_through_functions_and_reexports_not_type_checking(
    tmp_path: Path,
) -> None:
    codebase = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a/__init__.py": "from clust.a.x import X\n",
            "a/x.py": "def f():\n    from clust.a.y import Y\n",
            "a/y.py": "from . import X\n",  # back through the re-export
            "b/__init__.py": "from clust.b import s\n",  # its own submodule: fine
            "b/s.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from clust.b.t import T\n",
            "b/t.py": "import clust.b.s\n",
        },
    )
    assert _all(import_cycles(codebase)) == [
        "3 modules, 1 cycle(s):\n"
        "      clust.a -> clust.a.x -> clust.a.y -> clust.a\n"
        "        (clust/a/__init__.py:1, clust/a/x.py:2, clust/a/y.py:1)"
    ]


def test_lazy_exports_count_as_imports(tmp_path: Path) -> None:
    codebase = _package(
        tmp_path,
        {
            "__init__.py": "import importlib\n_LAZY = {'X': 'clust.x'}\n"
            "def __getattr__(n):\n    return importlib.import_module(_LAZY[n])\n",
            "x.py": "from clust import X as Y\n",
        },
    )
    assert _all(import_cycles(codebase)) == [
        "2 modules, 1 cycle(s):\n"
        "      clust -> clust.x -> clust\n        (clust/__init__.py:2, clust/x.py:1)"
    ]


def test_private_names_across_modules(tmp_path: Path) -> None:
    codebase = _package(
        tmp_path,
        {
            "__init__.py": "",
            "p/__init__.py": "",
            "p/_impl.py": "_hidden = 1\nclass K:\n    def __init__(self):\n        self._k = 1\n",
            "p/friend.py": "from clust.p._impl import K\nfrom clust.p import _impl\n"
            "k = K()\nk._k\n",
            "q.py": "from clust.p._impl import _hidden\nimport clust.p._impl as impl\n"
            "impl._hidden\nclass C:\n    _own = 1\ndef f(o):\n    return o._own, o._k, "
            "o.__dict__, super()._k\n",
        },
    )
    assert _all(private_imports(codebase)) == [
        "clust/q.py:1: from clust.p._impl import _hidden",
        "clust/q.py:1: imports private module clust.p._impl",
        "clust/q.py:2: imports private module clust.p._impl",
        "clust/q.py:3: clust.p._impl._hidden",
    ]
    assert _all(private_attributes(codebase)) == [
        "clust/p/friend.py:4: k._k",
        "clust/q.py:7: o._k",
    ]


def test_long_modules_and_testing_independence(tmp_path: Path) -> None:
    codebase = _package(
        tmp_path,
        {
            "__init__.py": "",
            "big.py": "x = 1\n" * (MAX_LINES + 1),
            "testing/__init__.py": "from clust.testing import fake\n",
            "testing/fake.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    import clust.big\n",
        },
    )
    assert _all(long_modules(codebase)) == [f"clust/big.py: {MAX_LINES + 1} lines (max 600)"]
    assert _all(clust_imports_in_testing(codebase)) == ["clust/testing/fake.py:3: clust.big"]


def test_layers_point_down(tmp_path: Path) -> None:
    codebase = _package(
        tmp_path,
        {
            "__init__.py": "from clust.client import Client\n",
            "messages/__init__.py": "",
            "messages/m.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from clust.protocol import p\n",
            "protocol/__init__.py": "",
            "protocol/p.py": "from clust.messages import m\n",
            "client/__init__.py": "from clust.protocol import p\nfrom clust import __version__\n",
        },
    )
    assert _all(layer_violations(codebase)) == [
        "clust/client/__init__.py:2: clust.client imports clust, a layer above it",
        "clust/messages/m.py:3: clust.messages imports clust.protocol.p, a layer above it",
    ]
