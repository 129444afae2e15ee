"""The shared core stays free of UI and server frameworks, however it imports them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "bioimnb" / "core"
FORBIDDEN = ("ipywidgets", "anywidget", "IPython", "tornado", "jupyter_server", "traitlets", "ipykernel")
FRONT_ENDS = ("bioimnb.cli", "bioimnb.widgets", "bioimnb.server", "bioimnb.magics")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append((node.lineno, node.module))
            elif node.level > 0:
                # Relative: resolve against the package path of the file.
                rel = path.relative_to(CORE.parent.parent).with_suffix("")
                parts = list(rel.parts)[: -node.level]
                found.append((node.lineno, ".".join(parts + ([node.module] if node.module else []))))
    return found


def test_core_source_imports_no_ui_anywhere():
    """Every import statement in bioimnb/core, including ones inside functions."""
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for lineno, module in _imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN or module.startswith(FRONT_ENDS):
                offenders.append(f"{path.relative_to(CORE.parent.parent)}:{lineno} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_importing_the_core_loads_no_ui_module():
    modules = [
        "bioimnb",
        *sorted(
            "bioimnb." + ".".join(p.relative_to(CORE.parent).with_suffix("").parts)
            for p in CORE.rglob("*.py")
            if p.name != "__init__.py"
        ),
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "import bioimnb; bioimnb.open_image; bioimnb.browse\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"UI modules loaded by the core: {proc.stdout.strip()}"


def test_detector_catches_a_forbidden_import(tmp_path):
    """The scanner itself works: a planted UI import is found."""
    fake = tmp_path / "planted.py"
    fake.write_text("def f():\n    import ipywidgets\n    from tornado import web\n")
    assert [m for _, m in _imports(fake)] == ["ipywidgets", "tornado"]


def test_core_never_imports_the_package_root():
    """The version and everything else the core needs live in the core (core/version.py)."""
    offenders = [
        f"{path.relative_to(CORE.parent.parent)}:{lineno} imports {module}"
        for path in sorted(CORE.rglob("*.py"))
        for lineno, module in _imports(path)
        if module == "bioimnb"
    ]
    assert not offenders, "\n".join(offenders)


# The one allowed cycle: ``%load_ext bioimnb`` makes the root import the magics lazily, and the
# magics reach the widgets through the root (front ends never import each other directly).  The
# magics package registers its subcommand modules, which reach the root the same way.
def _allowed_cycle(pair: tuple[str, str]) -> bool:
    magics = [m for m in pair if m == "bioimnb.magics" or m.startswith("bioimnb.magics.")]
    others = set(pair) - set(magics)
    return bool(magics) and others <= {"bioimnb", "bioimnb.magics"}


def test_no_import_cycles_in_the_package():
    import grimp

    graph = grimp.build_graph("bioimnb", exclude_type_checking_imports=True)
    cycles = set()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported.startswith("bioimnb") and graph.find_shortest_chain(importer=imported, imported=importer):
                cycles.add(tuple(sorted((importer, imported))))
    assert all(_allowed_cycle(c) for c in cycles), sorted(c for c in cycles if not _allowed_cycle(c))


def test_every_public_name_resolves():
    import bioimnb

    missing = [name for name in bioimnb.__all__ if not hasattr(bioimnb, name)]
    assert missing == []
    assert callable(bioimnb.completeness) and callable(bioimnb.dmp) and callable(bioimnb.transfer)
