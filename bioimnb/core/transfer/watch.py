"""Watch an acquisition folder and transfer each file once it has stopped growing.

The folder is polled (``os.stat`` only, or one listing of an object store per cycle): no
inotify, which network shares (SMB, NFS) do not deliver reliably, and no file is opened for
writing or locked, so the acquisition software is never blocked or slowed.  A file is
transferred once its size and modification time have been the same for ``settle`` seconds;
a file that changes again after it was transferred is transferred again (and, having a
different content at the destination, reported as a conflict unless ``overwrite``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ..errors import BioimnbError, display_source
from ..storage import resolve, storage_errors
from .copy import TransferCancelled, TransferReport, transfer
from .plan import JOURNAL_FOLDER

__all__ = ["watch"]


def _poll(src: Any) -> dict[str, tuple[int, Any]]:
    """``{relative path: (size, mtime or ETag)}`` of every file below the source, from stat
    calls or one listing; nothing is opened."""
    out: dict[str, tuple[int, Any]] = {}
    with storage_errors(src.url):
        if src.local:
            for top, dirs, names in os.walk(src.path):
                if top == src.path and JOURNAL_FOLDER in dirs:
                    dirs.remove(JOURNAL_FOLDER)
                for name in names:
                    full = os.path.join(top, name)
                    try:
                        st = os.stat(full)
                    except OSError:
                        continue  # deleted or renamed between the listing and the stat
                    rel = os.path.relpath(full, src.path).replace(os.sep, "/")
                    out[rel] = (st.st_size, st.st_mtime_ns)
            return out
        src.fs.invalidate_cache()
        base = src.path.rstrip("/") + "/"
        for path, info in src.fs.find(src.path, detail=True).items():
            if info.get("type") == "directory" or not path.startswith(base):
                continue
            stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified")
            out[path[len(base) :]] = (int(info.get("size") or 0), str(stamp))
    return out


def _merge(total: TransferReport, part: TransferReport) -> None:
    total.files += part.copied + part.skipped + len(part.failures)
    total.bytes += part.bytes
    total.copied += part.copied
    total.bytes_copied += part.bytes_copied
    total.skipped += part.skipped
    total.failures.extend(part.failures)
    total.checksums.update(part.checksums)
    total.sizes.update(part.sizes)


def watch(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    settle: float = 10.0,
    interval: float | None = None,
    cancel: Any = None,
    max_cycles: int | None = None,
    until: float | Callable[[], bool] | None = None,
    on_transfer: Callable[[TransferReport], None] | None = None,
    **transfer_options: Any,
) -> TransferReport:
    """Poll folder ``src`` every ``interval`` seconds (default ``settle / 2``, between 0.1 and 5)
    and :func:`~.copy.transfer` to ``dest`` each file whose size and modification time have not
    changed for ``settle`` seconds.  Runs until ``cancel.is_set()``, ``max_cycles`` polls,
    ``until`` (a ``time.time()`` deadline or a callable returning True) or Ctrl-C (in Python:
    KeyboardInterrupt propagates after the files in flight); returns the cumulative report.
    ``on_transfer`` receives each cycle's report.  Other keywords go to ``transfer``."""
    options = {k: v for k, v in transfer_options.items() if k not in ("files", "cancel", "sync", "bag")}
    if transfer_options.get("bag") or transfer_options.get("sync"):
        raise BioimnbError(display_source(os.fspath(src)), "watch mode copies files as they come; --bag and --sync are for one-off transfers")
    storage = {k: v for k, v in options.items() if k not in ("overwrite", "workers", "progress", "verify", "src_options", "dest_options")}
    src_res = resolve(src, **{**storage, **(options.get("src_options") or {})})
    with storage_errors(src_res.url):
        is_dir = os.path.isdir(src_res.path) if src_res.local else src_res.fs.isdir(src_res.path)
    if not is_dir:
        raise BioimnbError(src_res.url, "watch mode needs a folder to watch")
    step = interval if interval is not None else min(5.0, max(0.1, settle / 2))
    total = TransferReport(display_source(src_res.url), display_source(os.fspath(dest)))
    seen: dict[str, tuple[tuple[int, Any], float]] = {}
    sent: dict[str, tuple[int, Any]] = {}
    cycles = 0
    start = time.perf_counter()
    dest_text = os.fspath(dest)
    if not dest_text.endswith(("/", os.sep)):
        dest_text += "/"  # always a folder: the first file must not become the destination itself
    while True:
        now = time.monotonic()
        state = _poll(src_res)
        for rel, stamp in state.items():
            prev = seen.get(rel)
            if prev is None or prev[0] != stamp:
                seen[rel] = (stamp, now)
        for rel in list(seen):
            if rel not in state:
                del seen[rel]
        ready = sorted(rel for rel, (stamp, since) in seen.items() if now - since >= settle and sent.get(rel) != stamp)
        if ready:
            try:
                part = transfer(src_res.url if not src_res.local else src_res.path, dest_text, files=ready, cancel=cancel, **options)
            except TransferCancelled:
                break  # stopped in the middle of a cycle: what finished is at the destination, journalled
            _merge(total, part)
            for rel in ready:
                sent[rel] = seen[rel][0]
            if on_transfer is not None:
                on_transfer(part)
        cycles += 1
        if _stop(cancel, cycles, max_cycles, until):
            break
        deadline = time.monotonic() + step
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                break
            time.sleep(min(0.05, step))
    total.seconds = time.perf_counter() - start
    return total


def _stop(cancel: Any, cycles: int, max_cycles: int | None, until: Any) -> bool:
    if cancel is not None and cancel.is_set():
        return True
    if max_cycles is not None and cycles >= max_cycles:
        return True
    if until is None:
        return False
    if callable(until):
        return bool(until())
    return time.time() >= float(until)
