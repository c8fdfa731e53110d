"""The library's layout (docs/architecture.md): module size, floors, no import cycles, few lazy imports,
and a repository that stands alone (no citation of files outside it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib" / "llmsizing"
MAX_MODULE_LINES = 600
MAX_LAZY_PACKAGE_IMPORTS = 15

# Floors, lowest first: a module may import its own floor and those below it.
FLOORS = {
    "ground": 0, "serving": 1, "training": 1, "planner": 2, "validation": 3, "report": 4, "refresh": 5,
    "api": 6, "commands": 7, "cli": 7, "__main__": 7,
}


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(LIB.rglob("*.py")):
        name = ".".join(path.relative_to(LIB.parent).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        out[name] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return out


MODULES = _modules()


def _imported(module: str, path: Path, node: ast.AST) -> list[str]:
    """Package modules an import statement brings in (``from llmsizing.x import y`` → x.y or x)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("llmsizing")]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([base] if base else []))
    if not base.startswith("llmsizing"):
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _imports(top_level: bool) -> list[tuple[str, int, str]]:
    rows = []
    for module, (path, tree) in MODULES.items():
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        inner = {id(n) for f in functions for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and (id(node) not in inner) == top_level:
                rows += [(module, node.lineno, target) for target in _imported(module, path, node)]
    return rows


def _floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS.get(parts[1] if len(parts) > 1 else "ground", 0) if len(parts) > 1 else 0


def test_no_module_over_600_lines():
    long = {m: n for m, (p, _) in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, long


def test_no_import_cycles():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, _, target in _imports(top_level=True):
        if target in MODULES and target != module:
            graph[module].add(target)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif not state.get(nxt):
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for m in graph:
        if not state.get(m):
            visit(m, [])
    assert not cycles, [" -> ".join(c) for c in cycles]


def test_floors_import_only_downwards():
    upward = [(m, line, t) for m, line, t in _imports(top_level=True) if _floor(t) > _floor(m)]
    assert not upward, upward


def test_few_lazy_package_imports_each_with_a_reason():
    lazy = _imports(top_level=False)
    statements = {(m, line) for m, line, _ in lazy}
    assert len(statements) <= MAX_LAZY_PACKAGE_IMPORTS, sorted(statements)
    for module, line in statements:
        lines = MODULES[module][0].read_text().splitlines()
        context = "\n".join(lines[max(0, line - 4): line])
        assert "#" in context, f"{module}:{line} imports inside a function without saying why"


def test_the_repository_stands_alone():
    outside = re.compile(r"\.\./shared|shared/reference|/work/|catalog\.md|calibration\.yaml|anchors\.md")
    hits = []
    for folder in ("lib", "docs", "notebooks", "params"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".md", ".yaml", ".json", ".ipynb", ".j2", ".css"}:
                for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                    if outside.search(line):
                        hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits[:20])
