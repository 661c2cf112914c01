"""The floors of ARCHITECTURE.md, as import-linter checks them.

The real tree must keep the contract, and the contract must catch what it is there to catch:
each case copies the package, adds one forbidden import to the copy and runs ``lint-imports`` on
it, which must then fail naming that import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (the dev extra)"
)


def lint(src: Path, config_dir: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with ``pyproject.toml``'s contract on the package under ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(config_dir / "pyproject.toml")],
        cwd=config_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_its_floors() -> None:
    result = lint(ROOT / "src", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "added", "message"),
    [
        # the registry reaching up to the tasks (it used to, for create_model)
        (
            "registry.py",
            "import archsmith.tasks",
            "archsmith.registry is not allowed to import archsmith.tasks",
        ),
        # a family using the benchmarks' helpers (the compression pipeline used to)
        (
            "tensornet/compress/pipeline.py",
            "import archsmith.bench",
            "archsmith.tensornet is not allowed to import archsmith.bench",
        ),
        # families are independent of each other
        (
            "gating/layers.py",
            "import archsmith.reversible",
            "archsmith.gating is not allowed to import archsmith.reversible",
        ),
        # a late import inside a function counts as much as one at the top
        (
            "options.py",
            "def _late() -> None:\n    import archsmith.registry\n",
            "archsmith.options is not allowed to import archsmith.registry",
        ),
    ],
)
def test_an_upward_import_breaks_the_contract(
    tmp_path: Path, module: str, added: str, message: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "archsmith", src / "archsmith", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = src / "archsmith" / module
    target.write_text(target.read_text(encoding="utf-8") + "\n" + added + "\n", encoding="utf-8")
    result = lint(src, tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert message in result.stdout, result.stdout
