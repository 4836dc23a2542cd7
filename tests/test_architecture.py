"""The package's layer rule, checked on the source text (``ast``; nothing is imported).

Every import statement counts wherever it is written: at module level, inside functions and
methods, under ``if TYPE_CHECKING:``, and ``importlib.import_module("...")`` /
``__import__("...")`` with a literal name. Relative imports are resolved, and
``from pkg import name`` means the module ``pkg.name`` when ``pkg/name.py`` or the package
``pkg/name/`` exists, else ``pkg`` itself.

The checker functions take the package directory, so the self-checks at the bottom run them
on small fake trees and prove they are not vacuous.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# The layers, highest first. A module may import from its own top-level unit and from units in
# strictly lower layers; units that share a layer are independent and never import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    # 0. `python -m micromotion`, then the console script (`micromotion._entry`): signals and
    #    interrupts around the CLI.
    ("__main__",),
    ("_entry",),
    # 1. Front ends and the public surface over everything: the click CLI, the tiny random
    #    networks for tests (`micromotion.testing`), and compatibility shims that re-export the
    #    old flat module names.
    ("cli", "testing", "direction", "images", "invert"),
    # 1a. The Gradio web app: a front end that `micromotion web` (the CLI) builds and launches.
    ("web",),
    # 1b. Many jobs at once: a manifest of rows run through the pipelines, locally or on Ray.
    ("batch",),
    # 2. End-to-end jobs as library functions: results plus a provenance record; every file
    #    they write goes through `pipelines.outputs`.
    ("pipelines",),
    # 3. Paper step 1: anchors, the W+ codes of one face performing a motion (text, video).
    ("anchors",),
    # 4. Things built on networks: step 3's codes and frames (`render`), GAN inversion
    #    (`inversion`), and files of weights <-> networks and micromotion objects (`weights`).
    ("render", "inversion", "weights"),
    # 5. Independent toolkits: paper step 2's robust low-rank subspace (`subspace`, pure
    #    tensors), the asset registry and verified downloads (`hub`), face detection and
    #    FFHQ alignment (`faces`), image and video files (`media`).
    ("subspace", "hub", "faces", "media"),
    # 6. Network definitions in plain PyTorch (StyleGAN2, CLIP wrapper, IR-SE50, LPIPS) and
    #    the `w` sampler; they do no I/O.
    ("networks",),
    # 7. Base utilities: atomic files, provenance, seeds, devices, progress.
    ("core",),
    # 8. Leaves: the user-facing error types and the version string.
    ("errors", "_version"),
)

#: Units whose modules are front ends: they may not import tensor or pixel libraries.
FRONT_ENDS = ("cli", "web")
#: Libraries the front ends may not import (all tensor and pixel work lives below them).
FRONT_END_FORBIDDEN = ("torch", "numpy", "PIL")
#: Modules the networks may not import (relative to the package for our own units).
NETWORK_FORBIDDEN_OWN = ("hub", "weights")
NETWORK_FORBIDDEN_EXTERNAL = ("urllib", "requests", "safetensors")

ROOT = Path(__file__).resolve().parents[1] / "src" / "micromotion"


@dataclass(frozen=True)
class Import:
    """One resolved import: ``importer`` (a module) needs ``target`` (a module or package)."""

    path: Path
    line: int
    importer: str
    target: str


# --------------------------------------------------------------------------------------------
# Reading the tree
# --------------------------------------------------------------------------------------------


def iter_sources(root: Path) -> Iterator[Path]:
    """Every ``.py`` file of the package under ``root``, in a stable order."""
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path


def module_name(root: Path, path: Path) -> str:
    """``root/a/b.py`` → ``micromotion.a.b``; ``root/a/__init__.py`` → ``micromotion.a``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    """Module name → file, for every module of the package."""
    return {module_name(root, path): path for path in iter_sources(root)}


def is_own_module(root: Path, name: str) -> bool:
    """Whether ``name`` is a module or (possibly namespace) package inside ``root``."""
    parts = name.split(".")
    if parts[0] != root.name:
        return False
    if len(parts) == 1:
        return True
    base = root.joinpath(*parts[1:])
    return base.parent.joinpath(base.name + ".py").is_file() or base.is_dir()


def location(root: Path, imp: Import) -> str:
    """``micromotion/cli/apply.py:12`` for an import."""
    return f"{imp.path.relative_to(root.parent).as_posix()}:{imp.line}"


def _dynamic_import_name(node: ast.Call) -> str | None:
    """The literal module name of ``importlib.import_module("x")`` or ``__import__("x")``."""
    func = node.func
    named = (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")) or (
        isinstance(func, ast.Attribute) and func.attr == "import_module"
    )
    if not named or not node.args:
        return None
    arg = node.args[0]
    literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value
    if literal and not arg.value.startswith("."):
        return arg.value
    return None


def file_imports(root: Path, path: Path) -> list[Import]:
    """Every import in one file, resolved to absolute module names."""
    importer = module_name(root, path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def add(node: ast.AST, target: str) -> None:
        found.append(Import(path, node.lineno, importer, target))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = package.split(".")
                up = up[: len(up) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base == "__future__":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if alias.name != "*" and is_own_module(root, candidate):
                    add(node, candidate)
                else:
                    add(node, base)
        elif isinstance(node, ast.Call):
            name = _dynamic_import_name(node)
            if name is not None:
                add(node, name)
    return sorted(set(found), key=lambda imp: (imp.line, imp.target))


def all_imports(root: Path) -> list[Import]:
    """Every import of every module under ``root``."""
    return [imp for path in iter_sources(root) for imp in file_imports(root, path)]


def unit_of(name: str) -> str | None:
    """The top-level unit of a module name (``micromotion.hub.cache`` → ``hub``)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def top_level_units(root: Path) -> set[str]:
    """The top-level sub-packages and modules that exist under ``root``."""
    units = set()
    for path in iter_sources(root):
        rel = path.relative_to(root).parts
        if rel == ("__init__.py",):
            continue
        units.add(rel[0].removesuffix(".py"))
    return units


# --------------------------------------------------------------------------------------------
# The checks (each returns every violation, as one line each)
# --------------------------------------------------------------------------------------------


def layer_violations(root: Path, layers: Sequence[Sequence[str]] = LAYERS) -> list[str]:
    """Units missing from ``layers``, and imports that go up, sideways or to the bare root."""
    layer_of = {unit: index for index, layer in enumerate(layers) for unit in layer}
    pkg = root.name
    problems: list[str] = []
    unplaced: set[str] = {unit for unit in top_level_units(root) if unit not in layer_of}

    for imp in all_imports(root):
        if imp.target.split(".")[0] != pkg:
            continue
        source = unit_of(imp.importer)
        if source is None:  # the package root re-exports the public API: it may import anything
            continue
        where = f"{location(root, imp)}: {imp.importer} -> {imp.target}"
        if imp.target == pkg:
            problems.append(
                f"{where} (imports the bare package root; import from the module that "
                f"defines the name instead)"
            )
            continue
        target = unit_of(imp.target)
        assert target is not None
        if source not in layer_of or target not in layer_of:
            unplaced.update(unit for unit in (source, target) if unit not in layer_of)
            continue
        if target == source or layer_of[target] > layer_of[source]:
            continue
        kind = "a sibling in the same layer" if layer_of[target] == layer_of[source] else "higher"
        problems.append(
            f"{where} (`{source}` is layer {layer_of[source] + 1}, `{target}` is layer "
            f"{layer_of[target] + 1}: {kind})"
        )
    problems.extend(
        f"{pkg}.{unit} is in no layer: place it in LAYERS at the top of "
        f"tests/test_architecture.py (and in ARCHITECTURE.md)"
        for unit in sorted(unplaced)
    )
    return problems


def import_cycles(root: Path) -> list[str]:
    """Every cycle among the package's modules, as ``a -> b -> a`` (one per strongly
    connected component), with the import lines that make it."""
    known = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in known}
    lines: dict[tuple[str, str], str] = {}
    for imp in all_imports(root):
        if imp.target in known:
            graph[imp.importer].add(imp.target)
            lines.setdefault((imp.importer, imp.target), location(root, imp))

    # Tarjan's strongly connected components.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for component in components:
        members = set(component)
        start = min(component)
        if len(component) == 1 and start not in graph[start]:
            continue
        # Shortest path from start back to start inside the component (breadth first).
        previous: dict[str, str] = {}
        queue = [start]
        found = False
        while queue and not found:
            nxt_queue = []
            for node in queue:
                for nxt in sorted(graph[node] & members):
                    if nxt == start:
                        previous[start] = node
                        found = True
                        break
                    if nxt not in previous:
                        previous[nxt] = node
                        nxt_queue.append(nxt)
                if found:
                    break
            queue = nxt_queue
        path = [start]
        node = previous[start]
        while node != start:
            path.append(node)
            node = previous[node]
        path.append(start)
        path[1:-1] = reversed(path[1:-1])
        edges = ", ".join(lines[a, b] for a, b in itertools.pairwise(path))
        cycles.append(f"{' -> '.join(path)} ({edges})")
    return sorted(cycles)


def front_end_violations(root: Path) -> list[str]:
    """Imports of torch, numpy or PIL in the front ends (``cli``, ``web``)."""
    return [
        f"{location(root, imp)}: {imp.importer} -> {imp.target}"
        for imp in all_imports(root)
        if unit_of(imp.importer) in FRONT_ENDS and imp.target.split(".")[0] in FRONT_END_FORBIDDEN
    ]


def _torch_load_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Names bound to the torch module, and names bound to ``torch.load``, in one file."""
    modules_: set[str] = {"torch"}
    loads: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch" and alias.asname:
                    modules_.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module == "torch" and not node.level:
            for alias in node.names:
                if alias.name == "load":
                    loads.add(alias.asname or "load")
    return modules_, loads


def network_io_violations(root: Path) -> list[str]:
    """Networks that import the hub, weights or HTTP/file libraries, or open or load files."""
    pkg = root.name
    own = tuple(f"{pkg}.{unit}" for unit in NETWORK_FORBIDDEN_OWN)
    forbidden = own + NETWORK_FORBIDDEN_EXTERNAL
    found = [
        (imp.path, imp.line, f"{imp.importer} -> {imp.target}")
        for imp in all_imports(root)
        if unit_of(imp.importer) == "networks"
        and any(imp.target == name or imp.target.startswith(name + ".") for name in forbidden)
    ]
    for path in iter_sources(root):
        name = module_name(root, path)
        if unit_of(name) != "networks":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        torch_names, load_names = _torch_load_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            call = None
            if isinstance(func, ast.Name) and func.id == "open":
                call = "open(...)"
            elif isinstance(func, ast.Name) and func.id in load_names:
                call = f"{func.id}(...) (torch.load)"
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                owner = func.value.id
                if func.attr == "load" and owner in torch_names:
                    call = f"{owner}.load(...)"
                elif func.attr == "open" and owner in ("io", "os"):
                    call = f"{owner}.open(...)"
            if call is not None:
                found.append((path, node.lineno, f"{name} calls {call}"))
    return [
        f"{path.relative_to(root.parent).as_posix()}:{line}: {text}"
        for path, line, text in sorted(found)
    ]


def report(title: str, problems: list[str]) -> str:
    return f"{title} ({len(problems)}):\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------------------------
# The rules, on the real tree
# --------------------------------------------------------------------------------------------


def test_the_tree_is_found():
    names = modules(ROOT)
    assert f"{ROOT.name}.errors" in names, f"no package at {ROOT}"
    assert len(names) > 20
    assert len(all_imports(ROOT)) > 100


def test_layer_table_names_each_unit_once():
    units = [unit for layer in LAYERS for unit in layer]
    assert len(units) == len(set(units)), "a unit appears in two layers"


def test_each_layer_imports_only_from_layers_below():
    problems = layer_violations(ROOT)
    assert not problems, report(
        "Imports against the layer rule (see LAYERS and ARCHITECTURE.md)", problems
    )


def test_no_import_cycles():
    cycles = import_cycles(ROOT)
    assert not cycles, report("Import cycles (lazy imports included)", cycles)


def test_front_ends_import_no_torch_numpy_or_pil():
    problems = front_end_violations(ROOT)
    assert not problems, report(
        "Front ends importing torch/numpy/PIL (move the work into a pipeline)", problems
    )


def test_networks_do_no_io():
    problems = network_io_violations(ROOT)
    assert not problems, report(
        "I/O in micromotion.networks (files and downloads belong in weights/hub)", problems
    )


# --------------------------------------------------------------------------------------------
# Self-checks: the checker finds what it should, on fake trees
# --------------------------------------------------------------------------------------------


def make_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "micromotion"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_checker_finds_layer_violations(tmp_path):
    root = make_tree(
        tmp_path,
        {
            "__init__.py": "from micromotion.cli import main\n",
            "errors.py": "def f():\n    from micromotion.cli import main\n",
            "cli/__init__.py": "from micromotion.errors import MicromotionError\n",
            "core/__init__.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from ..subspace import rpca\n"
            ),
            "subspace/__init__.py": "",
            "subspace/rpca.py": "from micromotion.errors import MicromotionError\n",
            "hub/__init__.py": "from micromotion import faces\n",
            "faces/__init__.py": "",
            "media/images.py": "def f():\n    from micromotion import MicromotionError\n",
            "render/__init__.py": (
                "from micromotion import hub\n"
                "from micromotion.subspace import rpca\n"
                "from . import codes\n"
            ),
            "render/codes.py": "from .. import errors\n",
            "networks/x.py": (
                "import importlib\n\n\n"
                "def f():\n"
                "    return importlib.import_module('micromotion.anchors')\n"
            ),
            "anchors/__init__.py": "",
            "extras.py": "",
        },
    )
    problems = layer_violations(root)
    expected = [
        "micromotion/errors.py:2: micromotion.errors -> micromotion.cli ",
        "micromotion/core/__init__.py:3: micromotion.core -> micromotion.subspace.rpca ",
        "micromotion/hub/__init__.py:1: micromotion.hub -> micromotion.faces ",
        "micromotion/media/images.py:2: micromotion.media.images -> micromotion ",
        "micromotion/networks/x.py:5: micromotion.networks.x -> micromotion.anchors ",
        "micromotion.extras is in no layer",
    ]
    for text in expected:
        assert any(problem.startswith(text) for problem in problems), (text, problems)
    assert len(problems) == len(expected), problems
    assert "sibling" in next(p for p in problems if "micromotion.hub ->" in p)


def test_checker_resolves_imports(tmp_path):
    root = make_tree(
        tmp_path,
        {
            "__init__.py": "",
            "hub/__init__.py": "from .cache import fetch\nfrom . import cache\n",
            "hub/cache.py": "from ..core.io import x\nfrom micromotion.hub import nothing\n",
            "core/__init__.py": "",
            "core/io.py": "",
            "media/video.py": "from micromotion import media\nimport micromotion.core.io\n",
        },
    )
    targets = {(imp.importer, imp.target) for imp in all_imports(root)}
    assert targets == {
        ("micromotion.hub", "micromotion.hub.cache"),
        ("micromotion.hub.cache", "micromotion.core.io"),
        ("micromotion.hub.cache", "micromotion.hub"),
        ("micromotion.media.video", "micromotion.media"),
        ("micromotion.media.video", "micromotion.core.io"),
    }


def test_checker_finds_cycles(tmp_path):
    root = make_tree(
        tmp_path,
        {
            "__init__.py": "",
            "core/__init__.py": "from micromotion.core import a\n",
            "core/a.py": "from micromotion.core import b\n",
            "core/b.py": "def f():\n    from . import a\n",
            "core/c.py": "import micromotion.core.c\n",
            "core/d.py": "from micromotion.core import a\n",
        },
    )
    cycles = import_cycles(root)
    assert len(cycles) == 2, cycles
    assert cycles[0].startswith("micromotion.core.a -> micromotion.core.b -> micromotion.core.a ")
    assert "micromotion/core/b.py:2" in cycles[0]
    assert cycles[1].startswith("micromotion.core.c -> micromotion.core.c ")


def test_checker_finds_no_cycle_in_a_package_importing_its_modules(tmp_path):
    root = make_tree(
        tmp_path,
        {
            "__init__.py": "from micromotion.hub import fetch\n",
            "hub/__init__.py": "from micromotion.hub.cache import fetch\n",
            "hub/cache.py": "from micromotion.hub import entries\n",
            "hub/entries.py": "",
        },
    )
    assert import_cycles(root) == []


def test_checker_finds_heavy_front_ends(tmp_path):
    root = make_tree(
        tmp_path,
        {
            "__init__.py": "",
            "cli/__init__.py": "import click\n\n\ndef main():\n    import numpy as np\n",
            "cli/run.py": "from PIL.Image import open as pil_open\nimport torch.nn\n",
            "web/app.py": "import importlib\nnp = importlib.import_module('numpy')\n",
            "pipelines/job.py": "import torch\n",
        },
    )
    problems = front_end_violations(root)
    assert problems == [
        "micromotion/cli/__init__.py:5: micromotion.cli -> numpy",
        "micromotion/cli/run.py:1: micromotion.cli.run -> PIL.Image",
        "micromotion/cli/run.py:2: micromotion.cli.run -> torch.nn",
        "micromotion/web/app.py:2: micromotion.web.app -> numpy",
    ]


def test_checker_finds_io_in_networks(tmp_path):
    root = make_tree(
        tmp_path,
        {
            "__init__.py": "",
            "hub/__init__.py": "",
            "networks/bad.py": (
                "import urllib.request\n"
                "import torch as T\n"
                "from torch import load as tl\n"
                "from micromotion.hub import fetch\n\n\n"
                "def f(p):\n"
                "    from safetensors.torch import load_file\n"
                "    with open(p) as fh:\n"
                "        fh.read()\n"
                "    return T.load(p), tl(p), load_file(p)\n"
            ),
            "networks/good.py": "import torch\n\n\ndef g(x):\n    return torch.tanh(x)\n",
            "weights/ok.py": "import torch\n\n\ndef h(p):\n    return torch.load(p), open(p)\n",
        },
    )
    problems = network_io_violations(root)
    assert problems == [
        "micromotion/networks/bad.py:1: micromotion.networks.bad -> urllib.request",
        "micromotion/networks/bad.py:4: micromotion.networks.bad -> micromotion.hub",
        "micromotion/networks/bad.py:8: micromotion.networks.bad -> safetensors.torch",
        "micromotion/networks/bad.py:9: micromotion.networks.bad calls open(...)",
        "micromotion/networks/bad.py:11: micromotion.networks.bad calls T.load(...)",
        "micromotion/networks/bad.py:11: micromotion.networks.bad calls tl(...) (torch.load)",
    ]
