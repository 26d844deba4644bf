"""The import graph follows the layers of DESIGN.md, one way, with no circle:

    ordergrad_jax < ordergrad_envs < ordergrad_experiments.common
    < ordergrad_experiments.{control, pathwise, lm, variance}
    < ordergrad_experiments.{bench, sweeps, report, cli, registry, demo}

(the import packages of the folders ordergrad_jax/, envs/ and experiments/: pyproject.toml).

A module imports only its own layer and the layers below it; the trainer/study packages
(control, pathwise, lm, variance) never import each other. Every import counts: module level,
inside functions, relative, ``importlib.import_module("...")``/``__import__("...")`` with a literal
name, and the dotted module names written as strings (the registries' ``"module:attr"`` entries,
imported on demand). Read from the source with ``ast``, so nothing is imported to check it.

``bench``, ``report`` and ``sweeps`` reach a trainer/study package only through its public API:
``from ordergrad_experiments.<package> import NAME`` with ``NAME`` in the ``__all__`` of the
package's lazy ``__init__`` (issue 23 item 4); the last tests import those packages to check that
API itself.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import re
import subprocess
import sys
import tomllib
import types

import pytest

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

ROOT = pathlib.Path(__file__).resolve().parents[1]
# folder -> import package: pyproject.toml's package-dir map (envs/ is ordergrad_envs, ...)
_PACKAGE_DIR = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-dir"
]
PACKAGES = {"ordergrad_jax": "ordergrad_jax", **{f: p for p, f in _PACKAGE_DIR.items()}}
STUDIES = ("control", "pathwise", "lm", "variance")
CONSUMERS = ("bench", "report", "sweeps")  # import the STUDIES only through their public API

# (importer, imported) module pairs that break the layers today, each owned by another part of
# issue 23; the lead shrinks this list as they go. An entry that no longer occurs fails the test,
# so the list never keeps a fixed violation.
ALLOWED: dict[tuple[str, str], str] = {}

# Import edges left out of the cycle check, as (importer, prefix of the imported modules), each
# owned by another part of issue 23. An entry that matches no edge fails the test.
ALLOWED_CYCLE_EDGES: dict[tuple[str, str], str] = {}

_MODULE_STRING = re.compile(
    r"^(?:ordergrad_jax|ordergrad_envs|ordergrad_experiments)(?:\.\w+)+(?::\w+)?$"
)


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGES[parts[0]], *parts[1:]])


def project_modules(root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
    """``{dotted name: path}`` of every module of the three packages."""
    return {
        module_name(path, root): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    }


def from_base(node: ast.ImportFrom, package: str) -> str:
    """The absolute module ``from MODULE import ...`` names, its dots resolved in ``package``."""
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    return base


def imports(path: pathlib.Path, name: str) -> list[tuple[int, str]]:
    """``[(line, dotted name)]`` of everything ``path`` (module ``name``) imports, at any depth;
    ``from a import b`` gives ``a.b`` (resolved to ``a`` later when ``b`` is not a module)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = from_base(node, package)
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0] if node.args else None
            if called in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                found.append((node.lineno, str(arg.value)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _MODULE_STRING.match(node.value):
                found.append((node.lineno, node.value.split(":")[0]))
    return found


def resolve(target: str, modules: dict[str, pathlib.Path]) -> str | None:
    """The project module ``target`` names (its longest prefix that is one), or ``None``."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def layer(module: str) -> tuple[int, str]:
    """``(rank, group)``: a module may import ranks up to its own, and at rank 3 only its own
    group (a trainer/study package never imports a sibling)."""
    parts = module.split(".")
    if parts[0] == "ordergrad_jax":
        return 0, "ordergrad_jax"
    if parts[0] == "ordergrad_envs":
        return 1, "ordergrad_envs"
    if len(parts) > 1 and parts[1] == "common":
        return 2, "ordergrad_experiments.common"
    if len(parts) > 1 and parts[1] in STUDIES:
        return 3, f"ordergrad_experiments.{parts[1]}"
    if len(parts) == 1:  # experiments/__init__.py runs before any of its modules: lowest rank
        return 2, "ordergrad_experiments"
    return 4, "ordergrad_experiments (top)"


def graph(root: pathlib.Path = ROOT) -> dict[str, dict[str, int]]:
    """``{module: {imported project module: first line}}``."""
    modules = project_modules(root)
    edges: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        out = edges.setdefault(name, {})
        for line, target in imports(path, name):
            resolved = resolve(target, modules)
            if resolved is not None and resolved != name:
                out.setdefault(resolved, line)
    return edges


def violations(edges: dict[str, dict[str, int]]) -> dict[tuple[str, str], int]:
    """``{(importer, imported): line}`` for each import against the layers."""
    bad = {}
    for source, targets in edges.items():
        rank, group = layer(source)
        for target, line in targets.items():
            t_rank, t_group = layer(target)
            if t_rank > rank or (t_rank == rank == 3 and t_group != group):
                bad[(source, target)] = line
    return bad


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, {}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_against_the_layers():
    edges = graph()
    bad = violations(edges)
    modules = project_modules()
    new = [
        f"{modules[s].relative_to(ROOT)}:{line}: {s} imports {t}"
        for (s, t), line in sorted(bad.items())
        if (s, t) not in ALLOWED
    ]
    assert not new, "imports against the layers of DESIGN.md:\n" + "\n".join(new)
    stale = sorted(set(ALLOWED) - set(bad))
    assert not stale, f"fixed, remove from ALLOWED: {stale}"


def test_no_import_cycle():
    edges = graph()
    used = set()
    for source, prefix in ALLOWED_CYCLE_EDGES:
        for target in [t for t in edges.get(source, {}) if t.startswith(prefix)]:
            del edges[source][target]
            used.add((source, prefix))
    assert cycles(edges) == []
    stale = sorted(set(ALLOWED_CYCLE_EDGES) - used)
    assert not stale, f"no such edge any more, remove from ALLOWED_CYCLE_EDGES: {stale}"


def test_the_check_sees_every_kind_of_import(tmp_path):
    """Function-level, relative, dynamic and string imports are edges; a cycle and an upward or
    sibling import are found."""
    files = {
        "envs/__init__.py": "",
        "envs/tasks.py": "def f():\n    from ordergrad_experiments.common import runs\n",
        "experiments/__init__.py": "",
        "experiments/common/__init__.py": "",
        "experiments/common/runs.py": "from . import stats\n",
        "experiments/common/stats.py": "import importlib\n"
        "importlib.import_module('ordergrad_experiments')\n"
        "X = 'ordergrad_experiments.common.runs:Run'\n",
        "experiments/control/__init__.py": "",
        "experiments/control/run.py": "from ..pathwise.train import make_train\n",
        "experiments/pathwise/__init__.py": "",
        "experiments/pathwise/train.py": "def g():\n"
        "    import ordergrad_experiments.bench.transform\n",
        "experiments/bench/__init__.py": "",
        "experiments/bench/transform.py": "",
        "ordergrad_jax/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges = graph(tmp_path)
    assert edges["ordergrad_experiments.common.runs"] == {"ordergrad_experiments.common.stats": 1}
    assert set(edges["ordergrad_experiments.common.stats"]) == {
        "ordergrad_experiments",
        "ordergrad_experiments.common.runs",
    }
    assert set(violations(edges)) == {
        ("ordergrad_envs.tasks", "ordergrad_experiments.common.runs"),
        ("ordergrad_experiments.control.run", "ordergrad_experiments.pathwise.train"),
        ("ordergrad_experiments.pathwise.train", "ordergrad_experiments.bench.transform"),
    }
    assert cycles(edges) == [
        ["ordergrad_experiments.common.runs", "ordergrad_experiments.common.stats"]
    ]


def public_api(study: str, root: pathlib.Path = ROOT) -> set[str]:
    """The names in the literal ``__all__`` of ``experiments/<study>/__init__.py`` (read, not
    imported; none without one)."""
    tree = ast.parse((root / "experiments" / study / "__init__.py").read_text())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return set(ast.literal_eval(node.value))
    return set()


def _study(dotted: str) -> str | None:
    """The trainer/study package ``dotted`` is or lies in (``ordergrad_experiments.lm``), or
    ``None``."""
    parts = dotted.split(".")
    if parts[0] == "ordergrad_experiments" and len(parts) > 1 and parts[1] in STUDIES:
        return f"ordergrad_experiments.{parts[1]}"
    return None


def private_uses(root: pathlib.Path = ROOT) -> list[str]:
    """``path:line: what`` for each use of a trainer/study package in bench, report or sweeps
    that is not ``from ordergrad_experiments.<study> import NAMES`` with every name in its
    ``__all__`` (:func:`public_api`): a submodule imported in any way (``from``, ``import``,
    relative, dynamic, a ``"module:attr"`` string), or a name the package does not make public."""
    api = {f"ordergrad_experiments.{study}": public_api(study, root) for study in STUDIES}
    found = []
    for name, path in project_modules(root).items():
        if name.split(".")[:2] not in [["ordergrad_experiments", c] for c in CONSUMERS]:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            what = []
            if isinstance(node, ast.ImportFrom):
                base = from_base(node, package)
                if base in api:
                    private = [a.name for a in node.names if a.name not in api[base]]
                elif _study(base):  # a submodule
                    private = [a.name for a in node.names]
                else:  # the package itself as a module (from ordergrad_experiments import lm)
                    private = [a.name for a in node.names if _study(f"{base}.{a.name}")]
                what = [f"from {base} import {', '.join(private)}"] if private else []
            elif isinstance(node, ast.Import):
                what = [f"import {a.name}" for a in node.names if _study(a.name)]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if _MODULE_STRING.match(node.value) and _study(node.value):
                    what = [repr(node.value)]
            found += [(str(path.relative_to(root)), node.lineno, w) for w in what]
    return [f"{file}:{line}: {what}" for file, line, what in sorted(found)]


def test_bench_report_sweeps_use_only_the_trainers_public_api():
    bad = private_uses()
    assert not bad, (
        "bench/report/sweeps import a trainer/study package other than by "
        "'from ordergrad_experiments.<package> import NAME' with NAME in its __all__ (add what "
        "they need to the package's public API, experiments/<package>/__init__.py):\n"
        + "\n".join(bad)
    )


def test_the_public_api_check_sees_every_private_use(tmp_path):
    """Public names pass; a submodule (``from``, ``import``, relative, dynamic, a string) or a
    name outside ``__all__`` is found, at any depth."""
    files = {
        "experiments/__init__.py": "",
        "experiments/control/__init__.py": "__all__ = ['ControlConfig', 'make_train']\n",
        "experiments/control/run.py": "from ordergrad_experiments.control.plots import curves\n",
        "experiments/lm/__init__.py": "__all__ = ('LMConfig',)\n",
        "experiments/pathwise/__init__.py": "",
        "experiments/variance/__init__.py": "",
        "experiments/bench/__init__.py": "",
        "experiments/bench/control.py": "from ordergrad_experiments.control import ControlConfig\n"
        "from ..control import make_train\n"
        "def f():\n    from ordergrad_experiments.control import ControlConfig, plots\n",
        "experiments/report/__init__.py": "",
        "experiments/report/lm/__init__.py": "",
        "experiments/report/lm/runs.py": "import importlib\n"
        "from ordergrad_experiments.lm import LMConfig\n"
        "importlib.import_module('ordergrad_experiments.lm.run')\n"
        "import ordergrad_experiments.lm.curate as c\n"
        "from ordergrad_experiments import common, lm\n",
        "experiments/sweeps/__init__.py": "",
        "experiments/sweeps/variance.py": "from ordergrad_experiments.variance.run import summary\n"
        "from ..pathwise import variance\nX = 'ordergrad_experiments.lm.config:LMConfig'\n",
        "experiments/cli.py": "from ordergrad_experiments.lm.run import run\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert public_api("lm", tmp_path) == {"LMConfig"}
    assert public_api("variance", tmp_path) == set()
    assert private_uses(tmp_path) == [
        "experiments/bench/control.py:4: from ordergrad_experiments.control import plots",
        "experiments/report/lm/runs.py:3: 'ordergrad_experiments.lm.run'",
        "experiments/report/lm/runs.py:4: import ordergrad_experiments.lm.curate",
        "experiments/report/lm/runs.py:5: from ordergrad_experiments import lm",
        "experiments/sweeps/variance.py:1: from ordergrad_experiments.variance.run import summary",
        "experiments/sweeps/variance.py:2: from ordergrad_experiments.pathwise import variance",
        "experiments/sweeps/variance.py:3: 'ordergrad_experiments.lm.config:LMConfig'",
    ]


@pytest.mark.parametrize("study", STUDIES)
def test_each_public_name_of_a_trainer_resolves(study):
    """Each name of the package's ``__all__`` (as :func:`public_api` reads it) is an attribute,
    in ``dir``, and not a module; none is named like a submodule (importing a submodule sets the
    package attribute of its name, which would hide the public object)."""
    package = importlib.import_module(f"ordergrad_experiments.{study}")
    names = public_api(study)
    assert names == set(package.__all__)
    submodules = {p.stem for p in (ROOT / "experiments" / study).glob("*.py")}
    submodules |= {p.parent.name for p in (ROOT / "experiments" / study).glob("*/__init__.py")}
    assert not names & submodules
    for name in sorted(names):
        assert not isinstance(getattr(package, name), types.ModuleType), name
    assert names <= set(dir(package))
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


def test_trainer_packages_import_nothing_until_a_name_is_used():
    """The packages' ``__init__`` stay lazy (PEP 562, ``ordergrad_experiments.common.lazy``):
    importing them imports none of their submodules (the registry and ``ordergrad-jax list`` import
    config modules only)."""
    code = (
        "import sys\n"
        f"for study in {STUDIES!r}:\n"
        "    __import__(f'ordergrad_experiments.{study}')\n"
        "print(sorted(m for m in sys.modules if m.startswith('ordergrad_experiments.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lazy = ["ordergrad_experiments.common", "ordergrad_experiments.common.lazy"]
    assert out.stdout.strip() == str(
        sorted([*lazy, *(f"ordergrad_experiments.{s}" for s in STUDIES)])
    )


@pytest.mark.parametrize(
    ("module", "rank"),
    [
        ("ordergrad_jax.tables", 0),
        ("ordergrad_envs.rollout", 1),
        ("ordergrad_experiments.common.trainer", 2),
        ("ordergrad_experiments.lm.run", 3),
        ("ordergrad_experiments.report.envs", 4),
        ("ordergrad_experiments.cli", 4),
    ],
)
def test_layer_ranks(module, rank):
    assert layer(module)[0] == rank


def test_no_module_over_500_lines():
    """Sizes (issue #23): no module of the library, the envs or the experiments over 500 lines
    (a larger one is split where its concepts part)."""
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    assert sizes and not {path: n for path, n in sizes.items() if n > 500}


def test_no_code_imports_the_folders_by_their_names():
    """``envs`` and ``experiments`` are folders, not import names (``ordergrad_envs``,
    ``ordergrad_experiments``): an import of the bare name works only from the repository root
    (``python -m`` puts it on the path) and would load a second copy of the package."""
    bare = re.compile(r"^\s*(?:from|import)\s+(?:envs|experiments)\b", re.M)
    files = [
        p
        for folder in (*PACKAGES, "tests", "notebooks", "docs")
        for p in (ROOT / folder).rglob("*.py")
    ]
    found = [str(p.relative_to(ROOT)) for p in files if bare.search(p.read_text())]
    assert len(files) > 100 and not found, found
