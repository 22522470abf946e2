"""The layers of imports hold: each package imports only the packages below it (import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hpmail.config import PROJECT_ROOT


def test_each_package_imports_only_the_layers_below_it():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
