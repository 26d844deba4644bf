"""The wheel and sdist (``python -m build``) install cleanly (issue 26 item 3).

Built from this checkout, the wheel is installed non-editable into a fresh virtual environment
whose dependencies come from the running one (a ``.pth`` line naming its site-packages, so the
test downloads nothing). From outside the repository, that environment must give:

* three import packages under the project's name, ``ordergrad_jax``, ``ordergrad_envs`` and
  ``ordergrad_experiments``, and no generic top-level name (``envs``, ``experiments``);
* the library's type information (``py.typed``, PEP 561);
* the ``ordergrad-jax`` command: ``demo`` exits 0;
* the library tests, run against the installed wheel (not the checkout).

The jax 0.12 lane of ``.ci/run`` installs the same wheel with its real dependencies.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile

import pytest

pytestmark = pytest.mark.once  # packaging: neither the dtype nor the jax version changes it

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOP = ("ordergrad_jax", "ordergrad_envs", "ordergrad_experiments")


def test_pyproject_lists_every_package_under_its_folder():
    """``[tool.setuptools] packages`` (listed by hand, since the package-dir map renames the
    folders) names exactly the packages (folders with an ``__init__.py``) of the three folders."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {
        "ordergrad_envs": "envs",
        "ordergrad_experiments": "experiments",
    }
    found = set()
    for package in TOP:
        folder = ROOT / config["package-dir"].get(package, package)
        for init in folder.rglob("__init__.py"):
            found.add(".".join([package, *init.parent.relative_to(folder).parts]))
    assert set(config["packages"]) == found


# What the build reads: pyproject.toml's packages and metadata files.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "ordergrad_jax", "envs", "experiments")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> pathlib.Path:
    """``python -m build --no-isolation``: an sdist, then the wheel built from that sdist. Built
    from a copy of the sources, since a build writes metadata into its source tree (and CI
    installs lane 2 editable from the checkout meanwhile)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


def test_wheel_and_sdist_contents(dist):
    wheel = next(dist.glob("ordergrad_jax-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert set(TOP) <= top
    assert not top & {"envs", "experiments", "tests", "notebooks", "reports"}
    assert "ordergrad_jax/py.typed" in names
    assert "ordergrad_experiments/cli.py" in names and "ordergrad_envs/__init__.py" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "ordergrad-jax = ordergrad_experiments.cli:main" in text
    sdist = next(dist.glob("ordergrad_jax-*.tar.gz"))
    members = {m.split("/", 1)[1] for m in tarfile.open(sdist).getnames() if "/" in m}
    assert {"pyproject.toml", "README.md", "envs/__init__.py", "experiments/cli.py"} <= members


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> pathlib.Path:
    """A fresh venv with the wheel installed (``--no-deps``); its dependencies are the running
    environment's, reached through a ``.pth`` line (a ``.pth`` file in that folder is not run, so
    the running environment's editable install of this checkout stays out)."""
    env = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (pathlib.Path(purelib) / "running_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("ordergrad_jax-*.whl"))
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    return env


def _run(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    """``args`` run in ``cwd`` without this process's PYTHONPATH or VIRTUAL_ENV."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env)


def test_installed_wheel_layout_and_types(venv, tmp_path):
    python = str(venv / "bin" / "python")
    code = (
        "import importlib.util, pathlib, ordergrad_jax, ordergrad_envs, ordergrad_experiments\n"
        "for m in (ordergrad_jax, ordergrad_envs, ordergrad_experiments):\n"
        "    print(pathlib.Path(m.__file__).parent)\n"
        "print(importlib.util.find_spec('envs'), importlib.util.find_spec('experiments'))\n"
        "print((pathlib.Path(ordergrad_jax.__file__).parent / 'py.typed').is_file())\n"
    )
    out = _run(python, "-c", code, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    site = venv.resolve()
    for line, name in zip(lines[:3], TOP, strict=True):
        path = pathlib.Path(line).resolve()
        assert path.name == name and site in path.parents, line  # the wheel's copy, not ROOT's
    assert lines[3] == "None None"
    assert lines[4] == "True"


def test_installed_command_runs_the_demo(venv, tmp_path):
    out = _run(str(venv / "bin" / "ordergrad-jax"), "demo", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip()


def test_library_tests_pass_against_the_wheel(venv, tmp_path):
    """The library's API tests, imported from the installed wheel: ``pytest`` from its own
    script (which, unlike ``python -m pytest``, does not put the working directory on the path),
    run outside the repository; a first check that ``ordergrad_jax`` is the wheel's."""
    python = str(venv / "bin" / "python")
    where = _run(python, "-c", "import ordergrad_jax; print(ordergrad_jax.__file__)", cwd=tmp_path)
    assert venv.resolve() in pathlib.Path(where.stdout.strip()).resolve().parents
    code = "import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))"
    out = _run(
        python,
        "-c",
        code,
        "-q",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        str(ROOT / "tests" / "test_api.py"),
        str(ROOT / "tests" / "test_objectives.py"),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " passed" in out.stdout
