"""Jobs: run many small tasks on local threads or a Dask cluster, resumably, with progress,
cancellation and a provenance record.  Shared by convert (blocks), scans (files) and transfers
(objects).

A job is a list of :class:`Task` objects, each with an id that is stable across runs.  A
:class:`Journal` stored next to the output records the id and a digest of every finished task,
one small object per task (written atomically on local disks), so a run killed at any point -
Ctrl-C, a kernel restart, ``kill -9`` - is resumed by skipping the ids it holds.  The journal
also keeps the identity of the inputs (:func:`identity`: size and mtime or ETag per file), so
that a resume against an input that changed meanwhile can be refused (:func:`changed`).

:class:`Runner` ties it together::

    with Executor(scheduler, workers) as ex:
        job = Runner(ex, journal=journal, resume=True, progress=callback, cancel=event, total=n)
        for task, result in job.run(tasks, phase="level 0", measure=lambda r: (r.digest, r.nbytes)):
            ...

Task functions and arguments must be picklable when the executor is a ``dask.distributed``
client; nothing else is required of them.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as _dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import BioimnbError
from .storage import Resolved, storage_errors

__all__ = [
    "Cancelled",
    "Executor",
    "Journal",
    "Progress",
    "Runner",
    "Task",
    "changed",
    "default_scheduler",
    "identity",
    "provenance",
    "run_tasks",
]


class Cancelled(BioimnbError):
    """A job was cancelled or interrupted; what it finished is journalled and can be resumed."""


@dataclass
class Progress:
    """One progress report: ``done`` of ``total`` tasks (finished in earlier runs included)."""

    phase: str
    done: int
    total: int
    bytes_done: int
    elapsed: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None if self.done < self.total else 0.0
        return self.elapsed / self.done * (self.total - self.done)


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(*args)`` known by ``id`` (stable across runs: the journal key)."""

    id: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


# -- executor ------------------------------------------------------------------------------------


SCHEDULER_ENV = "BIOIMNB_DASK_SCHEDULER"
"""Environment variable naming the default scheduler (an address, ``gateway`` or ``gateway:NAME``)."""
SCHEDULER_CONFIG = "bioimnb.scheduler"
"""The same default as a ``dask.config`` key (``~/.config/dask/bioimnb.yaml``: ``bioimnb: {scheduler: ...}``);
the environment variable wins."""
WAIT_WORKERS_CONFIG = "bioimnb.wait-for-workers"
"""Seconds a job waits for the first worker of a cluster that has none yet (default 120)."""
GATEWAY_MAX_WORKERS_CONFIG = "bioimnb.gateway-max-workers"
"""Workers a ``"gateway"`` default cluster adapts up to (default 4)."""
LOCAL_NAMES = (None, "", "threads", "local")


def default_scheduler() -> Any:
    """The configured default scheduler: ``$BIOIMNB_DASK_SCHEDULER``, else the ``dask.config``
    key ``bioimnb.scheduler``, else None (local threads)."""
    value = os.environ.get(SCHEDULER_ENV, "").strip()
    if value:
        return value
    try:
        import dask.config
    except ImportError:  # pragma: no cover - dask is a dependency
        return None
    found = dask.config.get(SCHEDULER_CONFIG, None)
    return found or None


def _config(key: str, default: float) -> float:
    import dask.config

    try:
        return float(dask.config.get(key, default))
    except (TypeError, ValueError):
        return default


class Executor:
    """Where a job's tasks run.

    ``scheduler`` is one of

    - None: the configured default (:func:`default_scheduler`), else local threads;
    - ``"threads"`` / ``"local"``: local threads; ``"synchronous"``: one thread;
    - a ``dask.distributed`` scheduler address (``"tcp://host:8786"``) or ``Client``;
    - a cluster object with ``get_client()``: ``dask_gateway.GatewayCluster``, ``LocalCluster``,
      a dask-jobqueue cluster, ...; its client is closed with the job, the cluster is left running;
    - ``"gateway"``: a new cluster from the Dask Gateway configured in ``dask.config``
      (``gateway.address``, ``gateway.auth``: what a hub admin sets for everyone), adapting from
      1 to ``bioimnb.gateway-max-workers`` workers and shut down with the job;
      ``"gateway:NAME"``: connect to the running gateway cluster ``NAME``.

    A cluster without workers yet is waited for (``bioimnb.wait-for-workers`` seconds), then the
    job fails with one line instead of hanging.  Cancelling cancels the tasks in flight on the
    cluster, not only the ones not started.
    """

    def __init__(self, scheduler: Any = None, workers: int | None = None, name: str = "bioimnb-job") -> None:
        self.client: Any = None
        self.pool: cf.ThreadPoolExecutor | None = None
        self._own_client = False
        self._own_cluster: Any = None
        self._gateway: list[Any] = []  # the cluster handle made for "gateway[:NAME]", closed with the job
        self._in_flight: set[Any] = set()
        if scheduler is None:
            scheduler = default_scheduler()
        if scheduler in LOCAL_NAMES:
            self.workers = workers or max(1, os.cpu_count() or 1)
            self.pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix=name)
            return
        if scheduler in ("synchronous", "sync"):
            self.workers = 1
            self.pool = cf.ThreadPoolExecutor(1, thread_name_prefix=name)
            return
        from distributed import Client

        where = scheduler if isinstance(scheduler, str) else type(scheduler).__name__
        try:
            if isinstance(scheduler, Client):
                self.client = scheduler
            elif isinstance(scheduler, str) and (scheduler == "gateway" or scheduler.startswith("gateway:")):
                self.client = self._gateway_client(scheduler)
                self._own_client = True
            elif hasattr(scheduler, "get_client"):
                self.client = scheduler.get_client(set_as_default=False)
                self._own_client = True
            else:
                self.client = Client(scheduler, set_as_default=False)
                self._own_client = True
            self.workers = self._wait_for_workers()
        except BioimnbError:
            self.close()
            raise
        except (OSError, TimeoutError, ValueError, ImportError) as exc:
            self.close()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BioimnbError(f"scheduler {where}", f"cannot connect ({reason})") from None

    def _gateway_client(self, spec: str) -> Any:
        from dask_gateway import Gateway

        gateway = Gateway()  # closed by its cluster handle (closing it twice warns)
        if spec == "gateway":
            cluster = gateway.new_cluster(shutdown_on_close=True)
            self._own_cluster = cluster
            cluster.adapt(minimum=1, maximum=int(_config(GATEWAY_MAX_WORKERS_CONFIG, 4)))
        else:
            cluster = gateway.connect(spec.split(":", 1)[1])
        self._gateway.append(cluster)
        return cluster.get_client(set_as_default=False)

    def _wait_for_workers(self) -> int:
        def threads() -> int:
            info = self.client.scheduler_info()
            return int(sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

        found = threads()
        if found:
            return found
        timeout = _config(WAIT_WORKERS_CONFIG, 120.0)
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise BioimnbError(
                f"scheduler {self.client.scheduler.address}", f"no Dask worker joined in {timeout:g} s"
            ) from None
        return max(1, threads())

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.client is not None:
            fut = self.client.submit(fn, *args, pure=False)
            self._in_flight.add(fut)
            return fut
        assert self.pool is not None
        return self.pool.submit(fn, *args)

    def wait_any(self, futures: set[Any]) -> tuple[set[Any], set[Any]]:
        """(finished, still pending) as soon as at least one of ``futures`` finished."""
        if self.client is not None:
            from distributed import wait

            with self.client.as_current():
                res = wait(list(futures), return_when="FIRST_COMPLETED")
            self._in_flight.difference_update(res.done)
            return set(res.done), set(res.not_done)
        done, pending = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return set(done), set(pending)

    def close(self, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=cancel)
        if self.client is not None:
            if cancel and self._in_flight:
                # best effort: the cluster may be gone already
                with contextlib.suppress(Exception):
                    self.client.cancel(list(self._in_flight))
            self._in_flight.clear()
            if self._own_client:
                self.client.close()
                self._own_client = False
        if self._own_cluster is not None:
            cluster, self._own_cluster = self._own_cluster, None
            cluster.shutdown()
        while self._gateway:  # a connected cluster's handle (the cluster keeps running)
            with contextlib.suppress(Exception):
                self._gateway.pop().close()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.close(cancel=kind is not None)


def _is_set(cancel: Any) -> bool:
    return bool(cancel is not None and cancel.is_set())


def run_tasks(executor: Executor, tasks: Iterable[Task], *, cancel: Any = None, window: int | None = None) -> Iterator[tuple[Task, Any]]:
    """Run ``tasks`` with at most ``window`` (default 2 per worker) in flight; yield
    ``(task, result)`` in completion order.  A task's exception propagates from here (the tasks
    in flight are left to finish, none is started).  Once ``cancel.is_set()``, no task is
    started; the ones in flight are still yielded, then the iterator simply ends: callers
    check ``cancel`` themselves to tell a cancelled run from a finished one."""
    limit = window or max(2, executor.workers * 2)
    pending: dict[Any, Task] = {}
    it = iter(tasks)
    exhausted = False
    while pending or not exhausted:
        while not exhausted and len(pending) < limit:
            if _is_set(cancel):
                exhausted = True
                break
            task = next(it, None)
            if task is None:
                exhausted = True
                break
            pending[executor.submit(task.fn, *task.args)] = task
        if not pending:
            break
        finished, _ = executor.wait_any(set(pending))
        for fut in finished:
            task = pending.pop(fut)
            yield task, fut.result()


# -- journal -------------------------------------------------------------------------------------


class Journal:
    """Finished task ids and their digests, one small object per task under ``<res>/<folder>``
    (local disks or any fsspec store), plus named JSON records (the inputs' identity)."""

    def __init__(self, res: Resolved, folder: str = ".bioimnb") -> None:
        self.res = res
        self.base = res.path.rstrip("/") + "/" + folder.strip("/")
        self.root = self.base + "/journal"

    def load(self) -> dict[str, str]:
        """``{task id: digest}`` of every task recorded as done."""
        fs = self.res.fs
        with storage_errors(self.res.url):
            if not fs.exists(self.root):
                return {}
            files = fs.find(self.root)
            contents = fs.cat(files) if files else {}
        out = {}
        root = self.root.lstrip("/")
        for path, data in contents.items():
            rel = path[len(self.root) :] if path.startswith(self.root) else path.lstrip("/")[len(root) :]
            if rel.endswith(".tmp"):
                continue  # a write cut short by a crash: that task is not done
            out[rel.strip("/")] = data.decode() if isinstance(data, bytes) else str(data)
        return out

    def _write(self, path: str, data: bytes) -> None:
        if self.res.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)  # atomic: a crash leaves the old state or the new, never half
        else:
            self.res.fs.pipe_file(path, data)

    def mark(self, task_id: str, digest: str) -> None:
        """Record ``task_id`` as done (ids may contain ``/``: they become folders)."""
        self._write(f"{self.root}/{task_id}", (digest or "-").encode())

    def put(self, name: str, record: dict[str, Any]) -> None:
        """Store a named JSON record (e.g. ``"inputs"``: the identity of the job's inputs)."""
        self._write(f"{self.base}/{name}.json", json.dumps(record, sort_keys=True).encode())

    def get(self, name: str) -> dict[str, Any] | None:
        path = f"{self.base}/{name}.json"
        with storage_errors(self.res.url):
            if not self.res.fs.exists(path):
                return None
            data = self.res.fs.cat_file(path)
        try:
            found = json.loads(data)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    def clear(self) -> None:
        """Remove the journal and its records (the job finished)."""
        fs = self.res.fs
        with storage_errors(self.res.url):
            if fs.exists(self.base):
                fs.rm(self.base, recursive=True)


# -- runner --------------------------------------------------------------------------------------


def _default_measure(result: Any) -> tuple[str, int]:
    return "", 0


@dataclass
class Runner:
    """Runs tasks on ``executor``, skipping those the journal holds (with ``resume``), journalling
    each one that finishes, reporting :class:`Progress` and honouring ``cancel`` (any object with
    ``is_set()``) and Ctrl-C: both raise ``cancelled`` (default :class:`Cancelled`) naming ``source``."""

    executor: Executor
    journal: Journal | None = None
    resume: bool = False
    progress: Callable[[Progress], None] | None = None
    cancel: Any = None
    total: int = 0
    source: str = "job"
    cancelled: type[Cancelled] = Cancelled
    interrupted_reason: str = "interrupted; what is finished is kept, resume it with resume=True (CLI: --resume)"
    cancelled_reason: str = "cancelled; what is finished is kept, resume it with resume=True (CLI: --resume)"
    done: dict[str, str] = field(default_factory=dict)
    """Task id -> digest of every finished task (this run's and, with ``resume``, earlier ones)."""
    count: int = 0
    written: int = 0
    bytes_done: int = 0
    start: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.resume and self.journal is not None and not self.done:
            self.done = self.journal.load()

    def kept(self, ids: Iterable[str]) -> int:
        """How many of ``ids`` were finished by an earlier run; counted as done for progress."""
        n = sum(1 for i in ids if i in self.done)
        self.count += n
        return n

    def emit(self, phase: str) -> None:
        if self.progress is not None:
            self.progress(Progress(phase, self.count, self.total, self.bytes_done, time.monotonic() - self.start))

    def run(self, tasks: Iterable[Task], phase: str = "", measure: Callable[[Any], tuple[str, int]] = _default_measure) -> Iterator[tuple[Task, Any]]:
        """Run the tasks not done yet; ``measure(result)`` gives (digest, bytes) to journal and report."""
        todo = (t for t in tasks if t.id not in self.done)
        try:
            for task, result in run_tasks(self.executor, todo, cancel=self.cancel):
                digest, nbytes = measure(result)
                if self.journal is not None:
                    self.journal.mark(task.id, digest)
                self.done[task.id] = digest or "-"
                self.count += 1
                self.written += 1
                self.bytes_done += nbytes
                self.emit(phase)
                yield task, result
        except KeyboardInterrupt:
            self.executor.close(cancel=True)
            raise self.cancelled(self.source, self.interrupted_reason) from None
        except BaseException:
            self.executor.close(cancel=True)
            raise
        if _is_set(self.cancel):
            self.executor.close(cancel=True)
            raise self.cancelled(self.source, self.cancelled_reason)


# -- identity of inputs and provenance -----------------------------------------------------------


METADATA_NAMES = frozenset({"zarr.json", ".zattrs", ".zarray", ".zgroup", ".zmetadata", "METADATA.ome.xml"})
"""Files whose stamps stand for a remote folder's identity (see :func:`identity`)."""
REMOTE_FOLDER_DEPTH = 4


def _stamp(info: dict[str, Any]) -> str:
    """What changes when a file is rewritten: ETag / version id remotely, else mtime."""
    for key in ("VersionId", "ETag", "etag", "version_id", "generation", "md5Hash"):
        if info.get(key):
            return f"{key}={str(info[key]).strip(chr(34))}"
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("updated")
    if isinstance(mtime, _dt.datetime):
        return f"mtime={mtime.isoformat()}"
    return f"mtime={mtime}" if mtime is not None else "mtime=?"


def _file_identity(res: Resolved, path: str) -> dict[str, Any]:
    if res.local:
        st = os.stat(path)
        if not os.path.isdir(path):
            return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
        # a folder (a zarr store, an MRXS data folder): every file in it, in one digest
        h = hashlib.sha256()
        count = size = 0
        for top, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(top, name)
                try:
                    fst = os.stat(full)
                except OSError:
                    continue
                h.update(f"{os.path.relpath(full, path)}\0{fst.st_size}\0{fst.st_mtime_ns}\n".encode())
                count += 1
                size += fst.st_size
        return {"files": count, "size": size, "digest": h.hexdigest()}
    res.fs.invalidate_cache(path)  # the listing cache may predate a change: ask the store
    info = res.fs.info(path)
    if info.get("type") != "directory":
        return {"size": int(info.get("size") or 0), "stamp": _stamp(info)}
    # A remote folder (a zarr store of maybe millions of objects): listing every object would
    # cost a request per thousand, so only its metadata documents near the top are recorded
    # (a store rewritten in place rewrites those); chunk-level edits are left to the pixel
    # checks that callers run on what they re-read.
    h = hashlib.sha256()
    count = 0
    res.fs.invalidate_cache()  # listings of the folders below may be cached too
    found = res.fs.find(path, maxdepth=REMOTE_FOLDER_DEPTH, detail=True)
    for name, detail in sorted(found.items()):
        if name.rstrip("/").rsplit("/", 1)[-1] not in METADATA_NAMES:
            continue
        h.update(f"{name}\0{detail.get('size')}\0{_stamp(detail)}\n".encode())
        count += 1
    return {"metadata_files": count, "digest": h.hexdigest()}


def identity(res: Resolved, files: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{path: {size, mtime_ns | stamp, ...}}`` for every file (or folder) of an input's file set
    on ``res.fs``: what :func:`changed` compares to tell an input replaced in place.  A local
    folder stands for every file in it (sizes and mtimes, one digest); a remote folder for its
    metadata documents down to :data:`REMOTE_FOLDER_DEPTH` levels (listing a remote store in
    full costs a request per thousand objects)."""
    out: dict[str, dict[str, Any]] = {}
    with storage_errors(res.url):
        for path in files:
            out[path] = _file_identity(res, path)
    return out


def changed(recorded: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]]) -> str | None:
    """Why ``now`` differs from ``recorded`` (one phrase), or None when it does not."""
    for path in sorted(set(recorded) | set(now)):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if path not in now:
            return f"{name} is no longer part of the input"
        if path not in recorded:
            return f"{name} was added to the input"
        a, b = recorded[path], now[path]
        for key in ("unavailable", "size", "files", "metadata_files", "digest", "mtime_ns", "stamp", "inode"):
            if (key in a or key in b) and a.get(key) != b.get(key):
                what = {
                    "unavailable": "whether it can be read",
                    "size": "its size",
                    "files": "its file count",
                    "metadata_files": "its metadata",
                    "digest": "its contents",
                    "inode": "the file",
                }.get(key, "its modification stamp")
                return f"{name} changed ({what} differs)"
    return None


def provenance(source: str, res: Resolved | None = None, **extra: Any) -> dict[str, Any]:
    """Where an output came from: the source (as given, never credentials), its size and mtime,
    the tool and version, ``extra`` (options, format, ...) and the time."""
    from .version import VERSION

    facts: dict[str, Any] = {"size": 0, "mtime": None}
    if res is not None:
        with storage_errors(res.url):
            info = res.fs.info(res.path)
            size = int(info.get("size") or 0)
            if info.get("type") == "directory":
                size = int(res.fs.du(res.path)) if res.local else 0
        mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
        if isinstance(mtime, (int, float)):
            mtime = _dt.datetime.fromtimestamp(mtime, _dt.UTC).isoformat()
        facts = {"size": size, "mtime": str(mtime) if mtime is not None else None}
    return {
        "source": source,
        **facts,
        **extra,
        "tool": f"bioimnb {VERSION}",
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
