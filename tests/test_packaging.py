"""Packaging: every package folder is mapped, and a built wheel holds and imports them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile

import pytest

from conftest import ROOT

TOP = {"engine": "inscene.engine", "kernels": "inscene.kernels", "models": "inscene.models", "bench": "inscene.bench"}


def declared() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def on_disk() -> set[str]:
    found = set()
    for folder, pkg in TOP.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((pkg, *rel)))
    return found


def test_every_package_folder_is_declared():
    assert on_disk() - declared() == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert declared() - on_disk() == set(), "declared packages without a folder"


@pytest.mark.slow
def test_built_wheel_contains_and_imports_the_subpackages(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "No module named" in r.stderr:
        pytest.skip(f"cannot build without isolation here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr
    wheel = next(tmp_path.glob("inscene-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for pkg in declared():
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, pkg
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "import inscene.engine, inscene.kernels, inscene.models, inscene.bench, inscene.engine.cli.main as m; " \
           "print(inscene.engine.__file__)"
    r = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); "
                        f"sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; {code}"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(site))
