"""Fixtures for the server-extension tests: pytest-jupyter's server fixtures, bioimnb enabled.

pytest-jupyter's fixtures (``jp_fetch``, ``jp_serverapp``, ``http_server_client``...) and its
coroutine-test hooks are star-imported rather than declared with
``pytest_plugins = ("pytest_jupyter.jupyter_server",)``: pytest >= 8 refuses ``pytest_plugins``
in a conftest below the top level (an error when the whole suite is collected from ``tests/``),
and importing them here keeps them, including the autouse ``jp_asyncio_loop``, scoped to
``tests/server``.  Note: pytest-jupyter's ``http_server`` fixture (the Jupyter server's tornado
HTTP server, used by ``http_server_client``) shadows ``tests/conftest.py``'s ``http_server``
(the static Range-capable file server) in this directory.
"""

from __future__ import annotations

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures and hooks, see above)
from traitlets.config import Config


@pytest.fixture
def jp_server_config() -> Config:
    """Enable only the bioimnb extension, and fail loudly if it cannot be loaded."""
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"bioimnb": True, "jupyter_server_terminals": False},
                "reraise_server_extension_failures": True,
            }
        }
    )
