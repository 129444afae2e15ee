"""The distributions carry the prebuilt lab extension and switch the server extension on.

Builds the wheel and the sdist from this source tree with the installed hatchling (and its
jupyter-builder hook).  When ``bioimnb/labextension`` is already built the hook skips the npm
build (``skip-if-exists``) and this takes about a second; on a clean clone the hook runs
``jlpm install`` and ``jlpm build:prod`` in ``labextension/`` first (npm registry, ~30-60 s).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHARE = "share/jupyter/labextensions/bioimnb"
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/bioimnb.json"
ENABLED = {"ServerApp": {"jpserver_extensions": {"bioimnb": True}}}


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # jlpm and jupyter (called by the build hook and package.json) live next to this Python.
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env.update(extra)
    return env


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _section(listing: str, header: str) -> str:
    """The indented lines under ``header`` in a ``jupyter ... list`` output, colours removed."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", listing).splitlines()
    assert header in lines, listing
    body = []
    for line in lines[lines.index(header) + 1 :]:
        if line and not line[0].isspace():
            break
        body.append(line)
    return "\n".join(body)


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-t", "sdist", "-d", str(out)],
        cwd=ROOT,
        env=_env(),
        timeout=900,
    )
    (wheel,) = out.glob("bioimnb-*.whl")
    (sdist,) = out.glob("bioimnb-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.mark.timeout(900)
def test_wheel_ships_prebuilt_labextension_and_server_config(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = set(whl.namelist())
        data = next(n.split("/")[0] for n in names if n.endswith(".data/data/" + SERVER_CONFIG))
        share = f"{data}/data/{SHARE}"

        package = json.loads(whl.read(f"{share}/package.json"))
        assert package["name"] == "bioimnb"
        remote_entries = [
            n for n in names if re.fullmatch(rf"{share}/static/remoteEntry\.\w+\.js", n)
        ]
        assert len(remote_entries) == 1, remote_entries
        # The entry point JupyterLab loads is the one in the wheel.
        assert f"{share}/{package['jupyterlab']['_build']['load']}" == remote_entries[0]
        assert f"{share}/static/style.js" in names
        install = json.loads(whl.read(f"{share}/install.json"))
        assert install["packageName"] == "bioimnb"
        assert install["packageManager"] == "python"

        assert json.loads(whl.read(f"{data}/data/{SERVER_CONFIG}")) == ENABLED

        assert {"bioimnb/server/__init__.py", "bioimnb/server/handlers.py"} <= names
        assert not [n for n in names if "node_modules" in n]


@pytest.mark.timeout(900)
def test_sdist_has_labextension_sources_without_node_modules(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for source in [
        "labextension/package.json",
        "labextension/yarn.lock",
        "labextension/.yarnrc.yml",
        "labextension/tsconfig.json",
        "labextension/install.json",
        "labextension/src/index.ts",
        "labextension/style/index.css",
        "labextension/style/index.js",
        "jupyter-config/server-config/bioimnb.json",
        "bioimnb/labextension/package.json",  # prebuilt, so a wheel from the sdist needs no Node
        "bioimnb/labextension/static/style.js",
    ]:
        assert source in names, source
    unwanted = [
        n
        for n in names
        if "node_modules/" in n
        or n.startswith(("labextension/.yarn/", "labextension/lib/"))
        or n.endswith(".tsbuildinfo")
    ]
    assert unwanted == []


@pytest.mark.timeout(900)
def test_installed_wheel_enables_both_extensions(dists: dict[str, Path], tmp_path: Path) -> None:
    # Install the wheel alone into a fresh prefix and point Jupyter at that prefix only: the
    # lab extension and the server extension must both be found there, enabled and OK.
    prefix = tmp_path / "prefix"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            # Never touch the environment running the tests: without this, pip uninstalls the
            # (editable) bioimnb of the running venv before installing into the prefix.
            "--ignore-installed",
            "--prefix",
            str(prefix),
            str(dists["wheel"]),
        ],
        env=_env(),
        timeout=300,
    )
    (site,) = prefix.glob("lib/python*/site-packages")
    assert (site / "bioimnb" / "__init__.py").is_file()
    env = _env(
        PYTHONPATH=str(site),
        JUPYTER_PATH=str(prefix / "share" / "jupyter"),
        # `jupyter server extension list` ignores JUPYTER_CONFIG_PATH, but lists the user config
        # dir: make that the prefix's etc/jupyter, where the wheel put its server config.
        JUPYTER_CONFIG_PATH=str(prefix / "etc" / "jupyter"),
        JUPYTER_CONFIG_DIR=str(prefix / "etc" / "jupyter"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_PREFER_ENV_PATH="1",
    )

    labext = _run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    listing = _section(labext.stdout + labext.stderr, str(prefix / "share/jupyter/labextensions"))
    assert re.search(r"^\s*bioimnb v\S+ enabled OK\b", listing, re.M), listing

    serverext = _run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    listing = _section(
        serverext.stdout + serverext.stderr, f"Config dir: {prefix / 'etc' / 'jupyter'}"
    )
    assert re.search(r"^\s*bioimnb enabled$", listing, re.M), listing
    assert re.search(r"^\s*bioimnb \S+ OK$", listing, re.M), listing
    # ...and the bioimnb that was validated is the one from the wheel.
    check = _run(
        [sys.executable, "-c", "import bioimnb.server, sys; print(bioimnb.server.__file__)"],
        env=env,
        cwd=tmp_path,  # not the source tree: "-c" and "-m" put the cwd first on sys.path
        timeout=60,
    )
    assert Path(check.stdout.strip()).is_relative_to(site)
