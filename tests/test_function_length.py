"""No function or method longer than MAX_LINES outside the tests: one job each (issue 10)."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = ("appliance", "training", "benchmarks", "scripts")
MAX_LINES = 60


def long_functions(base: Path = REPO, roots: tuple[str, ...] = ROOTS) -> list[str]:
    """``file:line name (N lines)`` for every function or method over MAX_LINES."""
    found = []
    for root in roots:
        for path in sorted((base / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_LINES:
                        found.append(f"{path.relative_to(base)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_longer_than_sixty_lines() -> None:
    assert long_functions() == []


def test_the_check_sees_a_long_method(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "pkg" / "m.py").write_text(f"class C:\n    def short(self):\n        pass\n\n"
                                           f"    def long(self):\n{body}\n")
    assert long_functions(tmp_path, ("pkg",)) == [f"pkg/m.py:5 long ({MAX_LINES + 1} lines)"]
