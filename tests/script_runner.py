"""The project's entry points run the way the tests need them: as a user runs them (a subprocess of this
Python, one torch thread, warnings off) or in this process (the script's main(argv): faster, no second
torch import, and the exit code and stderr come back as a user would see them)."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def run_script(script: str | Path, *args, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """REPO/script with these arguments in a subprocess, output captured as text."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def load_script(script: str | Path) -> ModuleType:
    """REPO/script imported as a module (scripts/ is not a package), under a name of its own."""
    path = REPO / script
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call_main(module: ModuleType, *args) -> tuple[int, str]:
    """module.main(argv) in this process: (exit code, what it wrote to stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = module.main([str(a) for a in args])
        except SystemExit as stop:
            code = stop.code
    return code, err.getvalue()
