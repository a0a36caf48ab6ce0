"""The layer order of the package, declared once and checked on the source with ``ast``.

``LAYERS`` lists the components of ``src/blindsr`` from the lowest layer up. A component is a top-level package or
module (``ops``, ``nets``, ``types``, ...) or ``ROOT``, the package's own ``__init__.py`` (the public API). A module may
import its own component, and any component of a lower layer; it may import a component of its own layer only when
the layer is not ``independent``; it never imports upwards. Every module of ``src/blindsr`` must belong to a listed
component, and every listed component must exist, so a new package fails here until it is given a place.

What counts as an import of component ``x`` (all read with ``ast``, wherever they stand, inside functions too):
``import blindsr.x``, ``from blindsr.x import y``, ``from blindsr import x``, the relative forms
``from .. import x`` and ``from ..x import y``; ``import blindsr`` and ``from blindsr import <attribute>`` import
``ROOT``, the public API.
Imports under ``if TYPE_CHECKING:`` are counted like the others: a type-only import still ties one component to the
other (mypy follows it, and one edit turns it into a runtime import), and the lazy public API of ``__init__.py``
declares its real, dynamic dependencies exactly through such a block. ``importlib.import_module(name)`` calls are not
seen; ``__init__.py`` is the one place that uses them for the package, and its ``TYPE_CHECKING`` block mirrors them.

Why ``ast`` and not import-linter (a maintained library that checks the same contracts, installable here): the check
is ~100 lines with no dependency, it states the allow-list rule we want (an allow-listed import that no longer exists
fails, so the list only shrinks), it also checks that every module has a layer, and it carries the PIL rule; the
checker itself is tested below on synthetic package trees.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import blindsr

SRC = Path(blindsr.__file__).parent
ROOT = "<root>"  # the component of blindsr/__init__.py itself


@dataclass(frozen=True)
class Layer:
    """Components of one layer; with ``independent=True`` they may not import each other."""

    members: tuple[str, ...]
    independent: bool = False


# Lowest first. docs/design.md section 3 describes the same order in words.
LAYERS: tuple[Layer, ...] = (
    # foundation: plain Python and torch, no blindsr domain code (config: frozen dataclasses and the strict loader)
    Layer(("version", "files", "types", "config")),
    # layer 0: tensor operations (colour, MATLAB bicubic, filters, tiling, checks)
    Layer(("ops",)),
    # layer 1: the paper building blocks, and the generic training loop that knows only the Method protocol
    Layer(("degradations", "metrics", "losses", "nets", "engine"), independent=True),
    # layer 2: one descriptor per architecture (constructor, stored-argument translation, inference adapter, export
    # preparation); above nets, below everything that builds or runs a network by its id
    Layer(("archs",)),
    # layer 3: datasets and images; training recipes; the model zoo
    Layer(("data", "methods", "zoo"), independent=True),
    # layer 4: inference on user images; the benchmark runner
    Layer(("inference", "eval"), independent=True),
    # layer 5: applications of the library, and the public API of blindsr/__init__.py
    Layer(("analysis", "serve", ROOT), independent=True),
    # layer 6: the bundled demo (uses the public API)
    Layer(("demo",)),
    # layer 7: the command line, wiring only; imported by nothing
    Layer(("cli",)),
)

# Known violations of LAYERS, as (importing module, imported module). Shrink only: the test fails when an entry no
# longer occurs in the source, so fixing a violation forces removing it here. Empty means the order holds everywhere.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()

# Modules that may import PIL: the image readers and writers of data/, and the demo.
PIL_ALLOWED_PACKAGES = ("blindsr.data",)
PIL_ALLOWED_MODULES = frozenset({"blindsr.demo"})


# ---------------------------------------------------------------------------------------------------------- checker


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "blindsr.ops.crop"
    target: str  # the imported blindsr module, e.g. "blindsr.cli" or "blindsr" (the public API)
    line: int


def module_name(path: Path, src: Path) -> str:
    """``src/blindsr/ops/crop.py`` -> ``blindsr.ops.crop``; a package's ``__init__.py`` names the package."""
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, src: Path) -> bool:
    """Whether the dotted ``name`` (below the package) is a module or a package of ``src``."""
    rel = Path(*name.split(".")[1:])
    return (src / rel).with_suffix(".py").is_file() or (src / rel / "__init__.py").is_file()


def imports_of(path: Path, src: Path) -> list[Import]:
    """Every import of a module of the package ``src`` in the file ``path`` (relative ones resolved)."""
    package = src.name
    module = module_name(path, src)
    here = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package:
                    found.append(Import(module, alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                if node.level - 1 >= len(base):
                    raise ValueError(f"{path}:{node.lineno}: relative import beyond the package {package!r}")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != package:
                continue
            for alias in node.names:  # `from pkg.x import y` imports pkg.x.y when that is a module, else pkg.x
                sub = f"{source}.{alias.name}"
                found.append(Import(module, sub if _is_module(sub, src) else source, node.lineno))
    return found


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def layout_problems(src: Path, layers: tuple[Layer, ...]) -> list[str]:
    """Components listed twice, listed but absent, or present but not listed."""
    listed = [m for layer in layers for m in layer.members]
    problems = [f"{m!r} is listed in more than one layer" for m in sorted({m for m in listed if listed.count(m) > 1})]
    present = {component(module_name(p, src)) for p in src.rglob("*.py")}
    problems += [f"{m!r} is in LAYERS but no such module or package exists" for m in sorted(set(listed) - present)]
    problems += [
        f"{m!r} has no layer: add it to LAYERS in tests/test_layers.py (see docs/design.md)"
        for m in sorted(present - set(listed))
    ]
    return problems


def layer_violations(src: Path, layers: tuple[Layer, ...]) -> dict[tuple[str, str], str]:
    """(importing module, imported module) -> why it breaks ``layers``; components without a layer are skipped."""
    rank = {m: i for i, layer in enumerate(layers) for m in layer.members}
    independent = {m for layer in layers if layer.independent for m in layer.members}
    bad: dict[tuple[str, str], str] = {}
    for path in sorted(src.rglob("*.py")):
        for imp in imports_of(path, src):
            a, b = component(imp.module), component(imp.target)
            if a == b or a not in rank or b not in rank:
                continue
            where = f"{path.relative_to(src.parent)}:{imp.line}: {imp.module} imports {imp.target}"
            if rank[b] > rank[a]:
                bad.setdefault((imp.module, imp.target), f"{where} (upwards: {b!r} is in a higher layer than {a!r})")
            elif rank[b] == rank[a] and a in independent:
                bad.setdefault((imp.module, imp.target), f"{where} ({a} and {b} are independent siblings)")
    return bad


def pil_users(src: Path) -> set[str]:
    users = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            )
            if any(n.split(".")[0] == "PIL" for n in names):
                users.add(module_name(path, src))
    return users


# ---------------------------------------------------------------------------------------------- the package itself


def test_every_module_has_exactly_one_layer() -> None:
    problems = layout_problems(SRC, LAYERS)
    assert not problems, "\n".join(problems)


def test_imports_follow_the_layer_order() -> None:
    found = layer_violations(SRC, LAYERS)
    new = [why for key, why in sorted(found.items()) if key not in KNOWN_VIOLATIONS]
    assert not new, "imports against LAYERS (tests/test_layers.py):\n" + "\n".join(new)


def test_known_violations_still_exist() -> None:
    gone = sorted(KNOWN_VIOLATIONS - set(layer_violations(SRC, LAYERS)))
    assert not gone, f"fixed, remove from KNOWN_VIOLATIONS in tests/test_layers.py: {gone}"


def test_pil_only_in_data_and_demo() -> None:
    users = pil_users(SRC)
    inside = [u for u in users if any(u == p or u.startswith(p + ".") for p in PIL_ALLOWED_PACKAGES)]
    outside = sorted(users - PIL_ALLOWED_MODULES - set(inside))
    assert users and not outside, f"PIL imported outside blindsr/data/ and demo.py: {outside}"


# ------------------------------------------------------------------------------------ the checker, on a toy package

TOY_LAYERS = (
    Layer(("ops",)),
    Layer(("nets", "metrics"), independent=True),
    Layer(("data", "zoo")),
    Layer(("cli", ROOT)),
)


def _toy(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package ``blindsr`` under tmp_path with a few empty modules, plus ``files`` (path -> source)."""
    src = tmp_path / "blindsr"
    base = {
        "__init__.py": "",
        "ops/__init__.py": "",
        "ops/crop.py": "",
        "ops/resize.py": "",
        "nets/__init__.py": "",
        "metrics/__init__.py": "",
        "data/__init__.py": "",
        "zoo/__init__.py": "",
        "cli/__init__.py": "",
        "cli/main.py": "",
    }
    for rel, text in {**base, **files}.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


@pytest.mark.parametrize(
    "source",
    [
        "import blindsr.cli\n",
        "import blindsr.cli.main as m\n",
        "from blindsr.cli.main import x\n",
        "from blindsr import cli\n",
        "from blindsr import __version__\n",  # the public API (ROOT) sits above ops
        "import blindsr\n",
        "from .. import cli\n",
        "from ..cli import main\n",
        "from ..cli.main import x\n",
        "def f():\n    from blindsr import cli\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from blindsr.cli import main\n",
    ],
)
def test_checker_fails_on_an_upward_import(tmp_path: Path, source: str) -> None:
    src = _toy(tmp_path, {"ops/crop.py": source})
    found = layer_violations(src, TOY_LAYERS)
    assert [m for m, _ in found] == ["blindsr.ops.crop"], found
    assert "upwards" in next(iter(found.values()))


def test_checker_fails_on_an_independent_sibling(tmp_path: Path) -> None:
    src = _toy(tmp_path, {"nets/__init__.py": "from ..metrics import x\n", "data/__init__.py": "from ..zoo import x\n"})
    found = layer_violations(src, TOY_LAYERS)
    assert list(found) == [("blindsr.nets", "blindsr.metrics")]  # data and zoo share a layer that is not independent


@pytest.mark.parametrize(
    "source",
    [
        "import blindsr.ops.crop\nfrom blindsr.nets import x\nfrom blindsr import zoo\n",
        "from ..ops import crop\nfrom ..ops.resize import x\nfrom .. import nets, metrics\n",
        "from . import y\nimport torch\nfrom PIL import Image\n",
    ],
)
def test_checker_passes_downward_imports(tmp_path: Path, source: str) -> None:
    src = _toy(tmp_path, {"data/__init__.py": "", "data/io.py": source, "cli/main.py": "from blindsr import data\n"})
    assert layer_violations(src, TOY_LAYERS) == {}
    assert layout_problems(src, TOY_LAYERS) == []


def test_checker_resolves_relative_imports_in_modules_and_packages(tmp_path: Path) -> None:
    src = _toy(tmp_path, {"ops/crop.py": "from . import resize\nfrom .resize import y\nfrom .. import nets\n"})
    assert {i.target for i in imports_of(src / "ops" / "crop.py", src)} == {"blindsr.ops.resize", "blindsr.nets"}
    src = _toy(tmp_path, {"ops/__init__.py": "from . import crop\nfrom .. import zoo\n"})
    assert {i.target for i in imports_of(src / "ops" / "__init__.py", src)} == {"blindsr.ops.crop", "blindsr.zoo"}


def test_checker_wants_a_layer_for_every_component(tmp_path: Path) -> None:
    src = _toy(tmp_path, {"serve/__init__.py": "", "extra.py": ""})
    problems = layout_problems(src, (*TOY_LAYERS, Layer(("gone",)), Layer(("ops",))))
    assert problems == [
        "'ops' is listed in more than one layer",
        "'gone' is in LAYERS but no such module or package exists",
        "'extra' has no layer: add it to LAYERS in tests/test_layers.py (see docs/design.md)",
        "'serve' has no layer: add it to LAYERS in tests/test_layers.py (see docs/design.md)",
    ]


def test_checker_sees_pil(tmp_path: Path) -> None:
    src = _toy(tmp_path, {"ops/crop.py": "def f():\n    import PIL.Image\n", "data/io.py": "from PIL import Image\n"})
    assert pil_users(src) == {"blindsr.ops.crop", "blindsr.data.io"}
