"""The import contract (.importlinter, run by `make test` before pytest): the tree keeps it, and
an import that breaks a layer or the torch-free builder makes lint-imports fail."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("util", "data", "models", "options", "engine", "prediction", "evaluation", "experiments")
LINT = ("import sys\nfrom importlinter.cli import lint_imports_command\n"
        "sys.exit(lint_imports_command(['--no-cache']))\n")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=300)


def test_the_tree_keeps_the_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_or_torch_in_the_sky_builder_breaks_it(tmp_path):
    for package in PACKAGES:  # the sources only: no sample tiles, no caches
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("sky_samples", "__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    with open(tmp_path / "util" / "html.py", "a") as handle:
        handle.write("\nfrom engine import training  # a helper calling up into the run engine\n")
    with open(tmp_path / "data" / "sky" / "stretch.py", "a") as handle:
        handle.write("\nimport torch  # the builder must stay torch-free\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "util is not allowed to import engine" in result.stdout
    assert "data.sky is not allowed to import torch" in result.stdout
