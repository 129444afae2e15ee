"""Hub tests: a real JupyterHub and a real Dask Gateway on loopback (see ``hubkit``).

Marked ``hub`` (``pytest -m hub`` selects them; they run with the rest of the suite, never skipped).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for _path in (str(HERE), str(HERE.parent / "ui")):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hub: runs a real JupyterHub or Dask Gateway on loopback")
