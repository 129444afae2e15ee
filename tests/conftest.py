"""Fixtures shared by the whole suite: real storage servers and the shared sample data.

* ``s3``: a real SeaweedFS S3 endpoint on loopback (started once per session, credentials
  required); never skipped: a missing ``weed`` binary is a failure.
* ``http_server``: ``http_server(directory) -> base_url``, a Range-capable static HTTP server.
* ``shared_data``: ``../shared/data`` beside the repository (skipped when absent).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# The suite runs against the source tree, installed or not (``.venv/bin/pytest`` does not put
# the working directory on sys.path); ``servers`` and friends are importable as plain modules.
for _path in (str(REPO), str(TESTS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from servers import SeaweedS3, StaticHTTPServer  # noqa: E402


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A running SeaweedFS S3 server: ``endpoint_url``, ``key``, ``secret``,
    ``storage_options``, ``fs`` (s3fs), ``new_bucket()``, ``make_bucket()``, ``put(bucket, {...})``.
    """
    server = SeaweedS3.start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def static_http_server() -> Iterator[Callable[[str | Path], str]]:
    """Factory: ``static_http_server(directory)`` serves ``directory`` and returns its base URL
    (``http://127.0.0.1:<port>``, no trailing slash).  Servers stop at the end of the session.

    Also available as ``http_server``, except under ``tests/server`` where pytest-jupyter's
    fixture of that name (the Jupyter server itself) takes precedence.
    """
    servers: list[StaticHTTPServer] = []

    def start(directory: str | Path) -> str:
        server = StaticHTTPServer(directory)
        servers.append(server)
        return server.url

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def http_server(static_http_server: Callable[[str | Path], str]) -> Callable[[str | Path], str]:
    """``http_server(directory) -> base_url``: see ``static_http_server``."""
    return static_http_server


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository: read-only sample files from instruments."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared sample data not found at {path}")
    return path
