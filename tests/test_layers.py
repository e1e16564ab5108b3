"""The layers of docs/architecture.md, enforced: the import contracts in pyproject.toml ([tool.importlinter]) hold for
the real import graph of robosteer, sim and ros_nodes (every import counts, inside functions too), and the same
contracts really fail on a violating import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    exe = Path(sys.executable).parent / "lint-imports"
    found = str(exe) if exe.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is missing: it comes with the dev extra (make setup installs it)"
    return found


def _run(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """lint-imports with the contracts of ``cwd/pyproject.toml``."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _contracts() -> list[dict]:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]["contracts"]


def test_the_real_import_graph_keeps_every_layer_contract():
    result = _run(cwd=REPO)
    out = result.stdout + result.stderr
    assert result.returncode == 0, f"an import crosses a layer (docs/architecture.md):\n{out}"
    assert f"{len(_contracts())} kept, 0 broken" in out, out


def _fake_tree(root: Path, contracts: list[dict]) -> None:
    """Empty stand-ins for every module the contracts name (root packages included), so the real contracts run."""
    modules = {"robosteer", "sim", "ros_nodes"}
    for contract in contracts:
        modules.update(contract["source_modules"])
        modules.update(m for m in contract["forbidden_modules"] if m.split(".")[0] in {"robosteer", "sim", "ros_nodes"})
    for module in modules:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            package = root.joinpath(*parts[:i])
            package.mkdir(parents=True, exist_ok=True)
            (package / "__init__.py").touch()


@pytest.mark.parametrize("contract_id", [c["id"] for c in _contracts()])
def test_each_contract_fails_on_a_violating_import_inside_a_function(tmp_path, contract_id):
    """A stand-in tree with one forbidden import, made inside a function as lazy imports are: the real contracts from
    pyproject.toml, run by lint-imports, break exactly the contract it violates and exit non-zero."""
    contracts = _contracts()
    contract = next(c for c in contracts if c["id"] == contract_id)
    source, forbidden = contract["source_modules"][-1], contract["forbidden_modules"][0]
    src = tmp_path / "src"
    _fake_tree(src, contracts)
    module = src.joinpath(*source.split(".")) / "__init__.py"
    module.write_text(f"def lazy():\n    import {forbidden}\n\n    return {forbidden}\n")
    (tmp_path / "pyproject.toml").write_bytes((REPO / "pyproject.toml").read_bytes())

    result = _run(cwd=tmp_path, pythonpath=src)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{len(contracts) - 1} kept, 1 broken" in out, out
    assert f"{source} is not allowed to import {forbidden}" in out, out
