"""The packages depend one way: every ``memzoo`` import (module level or inside a function)
points to a package of a lower rank, or stays inside its own package."""

from __future__ import annotations

import ast
from pathlib import Path

import memzoo

ROOT = Path(memzoo.__file__).parent

# Lower ranks never import higher ones; packages of one rank never import each other.
RANKS = {
    "errors": 0,
    "files": 1,  # safe writes and folder checks (needs errors only)
    "ops": 1,
    "parsing": 1,  # bounded JSON/YAML parsing (needs errors only)
    "layers": 2,
    "models": 3,
    "metrics": 4,
    "data": 4,
    "tasks": 5,
    "apps": 6,
    "results": 6,
    "trackers": 6,  # experiment trackers (TensorBoard, MLflow, W&B): plain dicts in, no results/train
    "train": 7,
    "inspect": 8,  # looks inside trained models (loads checkpoints, reads tasks)
    "report": 8,
    "speed": 8,
    "integrations": 8,  # Hugging Face model classes, lm-eval (models, train's checkpoints; lazy extras)
    "sweep": 9,  # a suite may inspect each model it trains
    "cli": 10,
}


def memzoo_imports():
    """``(module file, line, imported package, inside a function)`` for every memzoo import."""
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text())
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        nested = {id(node) for f in functions for node in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "memzoo" and len(parts) > 1 and parts[1] in RANKS:
                    yield path, node.lineno, parts[1], id(node) in nested


def package_of(path: Path) -> str | None:
    relative = path.relative_to(ROOT).parts
    return relative[0].removesuffix(".py") if relative[0].removesuffix(".py") in RANKS else None


def test_every_package_has_a_rank():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(RANKS), sorted(packages - set(RANKS))


def test_no_import_runs_up_or_sideways():
    bad = []
    for path, line, target, _ in memzoo_imports():
        source = package_of(path)
        if source is None or source == target:
            continue  # memzoo/__init__.py and __main__.py sit on top; a package may use itself
        if RANKS[target] >= RANKS[source]:
            bad.append(f"{path.relative_to(ROOT)}:{line} imports memzoo.{target}")
    assert not bad, "\n".join(bad)


def test_no_memzoo_import_hides_inside_a_function():
    """Function-level imports are for optional third-party packages only; a memzoo import
    inside a function would only hide a cycle."""
    hidden = [
        f"{path.relative_to(ROOT)}:{line} imports memzoo.{target}"
        for path, line, target, inside in memzoo_imports()
        if inside and package_of(path) is not None
    ]
    assert not hidden, "\n".join(hidden)


# Small rooms: no function over MAX_FUNCTION_LINES lines and no file over MAX_FILE_LINES lines,
# except those named here with the reason they may be longer (none today).
MAX_FUNCTION_LINES, MAX_FILE_LINES = 60, 400
LONG_ALLOWED: dict[str, str] = {}  # "memzoo/path.py" or "memzoo/path.py:function" -> why


def test_functions_and_files_stay_small():
    too_long = []
    for path in sorted(ROOT.rglob("*.py")):
        name = f"memzoo/{path.relative_to(ROOT)}"
        text = path.read_text()
        if len(text.splitlines()) > MAX_FILE_LINES and name not in LONG_ALLOWED:
            too_long.append(f"{name}: {len(text.splitlines())} lines (max {MAX_FILE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES and f"{name}:{node.name}" not in LONG_ALLOWED:
                too_long.append(f"{name}:{node.lineno} {node.name}: {lines} lines (max {MAX_FUNCTION_LINES})")
    assert not too_long, "split these, or name them in LONG_ALLOWED with the reason:\n" + "\n".join(too_long)
