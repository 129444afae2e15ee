"""A real JupyterHub and a real Dask Gateway on loopback, for the hub tests and the hub benchmark.

* :func:`start_hub`: JupyterHub (``jupyterhub`` from this environment) with
  ``configurable-http-proxy`` from npm, ``SimpleLocalProcessSpawner`` (every user's server is a
  ``jupyterhub-singleuser`` process whose root is that user's home under the test's folder),
  ``DummyAuthenticator`` with one shared password and an allow-list of users, and an admin
  *service* token for the REST API (spawning servers, issuing user tokens).  Every port is a free
  loopback port; config, database, cookies and homes live under the given folder.
* :func:`start_gateway`: ``dask-gateway-server`` with its local backend
  (``UnsafeLocalBackend``: clusters are processes of the current user; fine on a test machine,
  not on a shared one) and a password authenticator.

Both return handles that stop every process they started (process groups) on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "workshop-password"


class HubError(RuntimeError):
    """A server did not start; the message ends with the tail of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(method: str, url: str, token: str | None = None, data: Any = None, timeout: float = 60) -> Response:
    """One request, redirects not followed (a 302 to the login page is an answer, not a page)."""
    headers = {"Authorization": f"token {token}"} if token else {}
    body = None
    if data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return Response(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as err:
        return Response(err.code, err.read(), dict(err.headers or {}))


@dataclass
class Hub:
    url: str  # http://127.0.0.1:<port>/  (the proxy: what users see)
    api: str  # http://127.0.0.1:<port>/hub/api/
    admin_token: str
    base: Path
    log: Path
    proc: subprocess.Popen[bytes]
    proxy_api: str = ""  # configurable-http-proxy's REST API (routes)
    proxy_token: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    def target(self, user: str) -> str:
        """Where the proxy sends ``/user/<user>/``: the single-user server's own address."""
        req = urllib.request.Request(f"{self.proxy_api}/api/routes", headers={"Authorization": f"token {self.proxy_token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            routes = json.loads(resp.read())
        for prefix, route in routes.items():
            if prefix.rstrip("/") == f"/user/{user}":
                return str(route["target"]).rstrip("/") + "/"
        raise HubError(f"no proxy route for {user}")

    def home(self, user: str) -> Path:
        return self.base / "home" / user

    def user_url(self, user: str) -> str:
        return f"{self.url}user/{user}/"

    def admin(self, method: str, path: str, data: Any = None) -> Response:
        return http(method, self.api + path, self.admin_token, data)

    def token(self, user: str) -> str:
        """An API token of ``user`` (issued once, by the admin service)."""
        if user not in self.tokens:
            resp = self.admin("POST", f"users/{user}/tokens", {"note": "hub tests", "expires_in": 3600})
            if resp.status not in (200, 201):
                raise HubError(f"token for {user}: {resp.status} {resp.body[:300]!r}")
            self.tokens[user] = resp.json()["token"]
        return self.tokens[user]

    def spawn(self, user: str, timeout: float = 120) -> None:
        """Start ``user``'s server and wait until it answers through the proxy."""
        resp = self.admin("POST", f"users/{user}")
        if resp.status not in (201, 409):
            raise HubError(f"create {user}: {resp.status} {resp.body[:300]!r}")
        resp = self.admin("POST", f"users/{user}/server")
        if resp.status not in (201, 202, 400):  # 400: already running
            raise HubError(f"spawn {user}: {resp.status} {resp.body[:300]!r}")
        deadline = time.monotonic() + timeout
        token = self.token(user)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HubError(f"the hub exited with {self.proc.returncode}:\n{_tail(self.log)}")
            info = self.admin("GET", f"users/{user}")
            if info.status == 200 and info.json().get("server") and not info.json().get("pending"):
                probe = http("GET", self.user_url(user) + "api/status", token)
                if probe.status == 200:
                    return
            time.sleep(0.5)
        raise HubError(f"{user}'s server did not start in {timeout:.0f} s:\n{_tail(self.log)}")

    def server_pid(self, user: str) -> int:
        """The process id of ``user``'s single-user server (SimpleLocalProcessSpawner's child)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                env = (entry / "environ").read_bytes().split(b"\0")
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if f"JUPYTERHUB_USER={user}".encode() in env and b"singleuser" in cmd:
                return int(entry.name)
        raise HubError(f"no single-user server process for {user}")


def _labextension_path(base: Path) -> Path:
    """This checkout's lab extension build, first on the extension path (as tests/ui does)."""
    ext_path = base / "labextensions"
    ext_path.mkdir(exist_ok=True)
    link = ext_path / "bioimnb"
    if not link.exists():
        link.symlink_to(REPO / "bioimnb" / "labextension", target_is_directory=True)
    return ext_path


@contextlib.contextmanager
def start_hub(
    base: Path,
    users: list[str],
    *,
    server_args: list[str] | None = None,
    server_config: dict[str, Any] | None = None,
    server_env: dict[str, str] | None = None,
    timeout: float = 90,
) -> Iterator[Hub]:
    """A running JupyterHub serving ``users`` (homes under ``base/home/<user>``, created here).
    ``server_config`` is the admin's Jupyter config of every single-user server (a
    ``jupyter_server_config.json`` on the servers' ``JUPYTER_CONFIG_PATH``); ``server_env`` is
    added to their environment (``c.Spawner.environment``).
    A free port taken by another process between choosing and binding it (the machine is
    shared) is retried with new ports, twice."""
    for attempt in range(3):
        try:
            with _start_hub(base / f"run{attempt}", base, users, server_args, server_config, server_env, timeout) as hub:
                yield hub
                return
        except _PortTaken:
            continue
    raise HubError("JupyterHub: its ports were taken three times in a row")


class _PortTaken(HubError):
    pass


@contextlib.contextmanager
def _start_hub(
    run: Path,
    base: Path,
    users: list[str],
    server_args: list[str] | None,
    server_config: dict[str, Any] | None,
    server_env: dict[str, str] | None,
    timeout: float,
) -> Iterator[Hub]:
    proxy = shutil.which("configurable-http-proxy")
    if proxy is None:
        raise HubError(
            "configurable-http-proxy not found: install it from npm "
            "(`npm install -g configurable-http-proxy`, as `make system-deps` does)"
        )
    run.mkdir(parents=True, exist_ok=True)
    for user in users:
        (base / "home" / user).mkdir(parents=True, exist_ok=True)
    port, hub_port, api_port = free_port(), free_port(), free_port()
    admin_token = secrets.token_hex(24)
    ext_path = _labextension_path(run)
    args = [
        "--allow-root",
        f"--LabApp.extra_labextensions_path={ext_path}",
        "--ServerApp.shutdown_no_activity_timeout=0",
        *(server_args or []),
    ]
    config = {
        "port": port,
        "hub_port": hub_port,
        "api_port": api_port,
        "base": str(run),
        "homes": str(base / "home"),
        "users": users,
        "password": PASSWORD,
        "admin_token": admin_token,
        "cmd": [sys.executable, "-m", "jupyterhub.singleuser"],
        "args": args,
        "proxy": proxy,
    }
    admin_config = run / "server-config"
    admin_config.mkdir(exist_ok=True)
    (admin_config / "jupyter_server_config.json").write_text(json.dumps(server_config or {}))
    config["server_config_path"] = str(admin_config)
    config["server_env"] = dict(server_env or {})
    (run / "hub.json").write_text(json.dumps(config))
    (run / "jupyterhub_config.py").write_text(HUB_CONFIG)
    env = dict(os.environ)
    proxy_token = secrets.token_hex(24)
    env.update(
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        CONFIGPROXY_AUTH_TOKEN=proxy_token,
        BIOIMNB_HUB_TEST_CONFIG=str(run / "hub.json"),
    )
    log = run / "hub.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(run / "jupyterhub_config.py")],
            cwd=run,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(
        f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/hub/api/", admin_token, base, log, proc,
        proxy_api=f"http://127.0.0.1:{api_port}", proxy_token=proxy_token,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                tail = _tail(log)
                if "address already in use" in tail.lower():  # the hub or its proxy
                    raise _PortTaken(tail)
                raise HubError(f"JupyterHub exited with {proc.returncode}:\n{tail}")
            with contextlib.suppress(OSError):
                if hub.admin("GET", "").status == 200:
                    break
            if time.monotonic() > deadline:
                raise HubError(f"JupyterHub did not answer in {timeout:.0f} s:\n{_tail(log)}")
            time.sleep(0.3)
        yield hub
    finally:
        # The hub stops the servers it spawned (cleanup_servers); the process group catches the rest.
        _stop(proc)
        with contextlib.suppress(OSError):
            (ext_path / "bioimnb").unlink()


# The hub's configuration file: everything comes from the JSON the test wrote beside it.
HUB_CONFIG = '''
import json, os
from jupyterhub.spawner import SimpleLocalProcessSpawner

cfg = json.load(open(os.environ["BIOIMNB_HUB_TEST_CONFIG"]))
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = cfg["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = cfg["hub_port"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % cfg["api_port"]
c.ConfigurableHTTPProxy.command = [cfg["proxy"]]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = "sqlite:///" + os.path.join(cfg["base"], "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(cfg["base"], "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(cfg["base"], "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = cfg["password"]
c.Authenticator.allowed_users = set(cfg["users"])
c.JupyterHub.spawner_class = SimpleLocalProcessSpawner
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(cfg["homes"], "{username}")
c.Spawner.cmd = cfg["cmd"]
c.Spawner.args = cfg["args"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {
    "JUPYTER_PLATFORM_DIRS": "1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "JUPYTER_CONFIG_PATH": cfg["server_config_path"],
    **cfg["server_env"],
}
c.JupyterHub.services = [{"name": "test-admin", "api_token": cfg["admin_token"]}]
c.JupyterHub.load_roles = [{"name": "admin", "services": ["test-admin"]}]
c.JupyterHub.log_level = "INFO"
'''


# -- Dask Gateway ----------------------------------------------------------------------------------


@dataclass
class Gateway:
    address: str  # http://127.0.0.1:<proxy port>
    proxy_address: str  # gateway://127.0.0.1:<proxy port>
    password: str
    log: Path
    proc: subprocess.Popen[bytes]

    def client(self) -> Any:
        """A ``dask_gateway.Gateway`` logged in with the test password."""
        from dask_gateway import BasicAuth
        from dask_gateway import Gateway as GatewayClient

        return GatewayClient(self.address, proxy_address=self.proxy_address, auth=BasicAuth("student", self.password))

    def log_tail(self) -> str:
        return _tail(self.log)


GATEWAY_CONFIG = '''
import json, os, sys
cfg = json.load(open(os.environ["BIOIMNB_GATEWAY_TEST_CONFIG"]))
c = get_config()  # noqa: F821
c.Gateway.address = "127.0.0.1:%d" % cfg["port"]
c.Proxy.address = "127.0.0.1:%d" % cfg["proxy_port"]
c.Gateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.Gateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = cfg["password"]
c.UnsafeLocalBackend.clusters_directory = cfg["clusters"]
c.LocalClusterConfig.scheduler_cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
c.LocalClusterConfig.worker_cmd = [sys.executable, "-m", "distributed.cli.dask_worker"]
c.LocalClusterConfig.worker_cores = 1
c.LocalClusterConfig.worker_threads = 2
c.LocalClusterConfig.worker_memory = "2 G"
c.LocalClusterConfig.scheduler_memory = "1 G"
c.LocalClusterConfig.idle_timeout = 600
c.LocalClusterConfig.environment = {"PYTHONPATH": cfg["pythonpath"], "AWS_EC2_METADATA_DISABLED": "true"}
'''


@contextlib.contextmanager
def start_gateway(base: Path, timeout: float = 60) -> Iterator[Gateway]:
    """A running ``dask-gateway-server`` (local backend) on loopback."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "clusters").mkdir(exist_ok=True)
    port, proxy_port = free_port(), free_port()
    password = secrets.token_hex(12)
    (base / "gateway.json").write_text(
        json.dumps(
            {
                "port": port,
                "proxy_port": proxy_port,
                "password": password,
                "clusters": str(base / "clusters"),
                "pythonpath": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            }
        )
    )
    (base / "dask_gateway_config.py").write_text(GATEWAY_CONFIG)
    env = dict(os.environ)
    env.update(
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        BIOIMNB_GATEWAY_TEST_CONFIG=str(base / "gateway.json"),
    )
    log = base / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dask-gateway-server"), "-f", str(base / "dask_gateway_config.py")],
            cwd=base,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Users reach the gateway through its proxy (HTTP API and scheduler traffic on one port);
    # ``Gateway.address`` is the server's private API.
    gw = Gateway(f"http://127.0.0.1:{proxy_port}", f"gateway://127.0.0.1:{proxy_port}", password, log, proc)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise HubError(f"dask-gateway-server exited with {proc.returncode}:\n{_tail(log)}")
            with contextlib.suppress(OSError):
                if http("GET", gw.address + "/api/health").status == 200:
                    break
            if time.monotonic() > deadline:
                raise HubError(f"dask-gateway-server did not answer in {timeout:.0f} s:\n{_tail(log)}")
            time.sleep(0.3)
        yield gw
    finally:
        _stop(proc)
