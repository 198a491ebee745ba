"""The package's layers only import downwards (README, "Layout").

Each module belongs to a layer: its folder, or for the top-level modules the name in LAYER_OF.
A module may import its own layer and the layers listed in MAY_IMPORT for it, nothing else, at
module level or inside functions alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "layers" / "lambdasette" / "lambdasette"

BASE = "base"  # errors, settings, metadata, tilde, args, column_types, logs, names, celljson: shared
LAYER_OF = {
    "errors": BASE, "settings": BASE, "metadata": BASE, "tilde": BASE, "args": BASE, "__init__": BASE,
    "column_types": BASE, "logs": BASE, "names": BASE, "celljson": BASE,
    "instance": "instance",
    "app": "top", "cli": "top", "demo": "top",
}
MAY_IMPORT = {
    BASE: set(),
    "storage": {BASE},
    "auth": {BASE},
    "query": {BASE, "auth"},
    "writes": {BASE, "storage", "auth", "query"},
    "imports": {BASE, "storage", "query", "writes"},
    "instance": {BASE, "storage", "auth", "query", "writes"},
    "web": {BASE, "storage", "auth", "query", "writes", "instance"},
    "endpoints": {BASE, "storage", "auth", "query", "writes", "instance", "web"},
    "handlers": {BASE, "storage", "auth", "query", "writes", "imports", "instance", "web", "endpoints", "top"},
    "top": {BASE, "storage", "auth", "query", "writes", "imports", "instance", "web", "endpoints"},
}


def layer_of(module: str) -> str:
    """`lambdasette.query.facets` → `query`; `lambdasette.errors` → `base`."""
    parts = module.split(".")[1:] or ["__init__"]
    if (PACKAGE / parts[0]).is_dir():
        return parts[0]
    return LAYER_OF[parts[0]]


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


def imported(path: Path) -> list[tuple[int, str]]:
    """Every `lambdasette...` module the file imports, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                pytest.fail(f"{path}: relative import on line {node.lineno}; the package uses absolute imports")
            if node.module == "lambdasette":
                found += [(node.lineno, f"lambdasette.{alias.name}") for alias in node.names]
            elif node.module.startswith("lambdasette."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("lambdasette.")]
    return found


def test_every_module_has_a_layer() -> None:
    for module, _ in modules():
        assert layer_of(module) in MAY_IMPORT, module


@pytest.mark.parametrize("module,path", modules(), ids=[m for m, _ in modules()])
def test_imports_go_down_the_layers(module: str, path: Path) -> None:
    own = layer_of(module)
    wrong = []
    for line, target in imported(path):
        if target == "lambdasette.__version__":
            continue
        other = layer_of(target)
        if other != own and other not in MAY_IMPORT[own]:
            wrong.append(f"line {line}: {own} imports {target} ({other})")
    assert not wrong, f"{module}: " + "; ".join(wrong)


def test_every_layer_says_what_it_holds_and_may_import() -> None:
    for folder in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
        assert "May import" in doc, f"{folder.name}/__init__.py must say what the layer may import"


def test_the_local_cloud_is_not_in_the_package() -> None:
    assert not list(PACKAGE.rglob("localcloud*"))
