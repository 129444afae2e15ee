"""bioimnb.core.jobs on its own: resume after a crash, cancel, progress, errors, input identity."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from bioimnb.core.errors import BioimnbError
from bioimnb.core.jobs import (
    Cancelled,
    Executor,
    Journal,
    Runner,
    Task,
    changed,
    identity,
    provenance,
    run_tasks,
)
from bioimnb.core.storage import resolve


def square(n: int, out: str | None = None) -> tuple[str, int]:
    value = n * n
    if out is not None:
        with open(os.path.join(out, f"{n}.txt"), "w") as fh:
            fh.write(str(value))
    return hashlib.sha256(str(value).encode()).hexdigest(), 8


def tasks_for(n: int, out: str | None = None) -> list[Task]:
    return [Task(f"sq/{i}", square, (i, out)) for i in range(n)]


def test_runs_every_task_reports_progress_and_journals(tmp_path):
    seen = []
    journal = Journal(resolve(str(tmp_path / "job")))
    with Executor(workers=2) as ex:
        runner = Runner(ex, journal=journal, progress=seen.append, total=20)
        results = dict((t.id, r) for t, r in runner.run(tasks_for(20), "squares", measure=lambda r: r))
    assert sorted(results) == sorted(f"sq/{i}" for i in range(20))
    assert [p.done for p in seen] == list(range(1, 21))
    assert seen[-1].bytes_done == 160 and seen[-1].fraction == 1.0 and seen[-1].eta == 0.0
    assert {p.phase for p in seen} == {"squares"}
    stored = journal.load()
    assert stored == {f"sq/{i}": hashlib.sha256(str(i * i).encode()).hexdigest() for i in range(20)}
    journal.put("inputs", {"a": {"size": 1}})
    assert journal.get("inputs") == {"a": {"size": 1}}
    journal.clear()
    assert journal.load() == {} and journal.get("inputs") is None


def test_resume_after_a_crash_skips_journalled_tasks(tmp_path):
    """A process killed with SIGKILL mid-job: the next run does exactly the tasks not journalled."""
    out = tmp_path / "out"
    out.mkdir()
    job = tmp_path / "job"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_jobs import tasks_for
        from bioimnb.core.jobs import Executor, Journal, Runner
        from bioimnb.core.storage import resolve
        ex = Executor(workers=1)
        runner = Runner(ex, journal=Journal(resolve({str(job)!r})), total=30)
        for task, _ in runner.run(tasks_for(30, {str(out)!r}), measure=lambda r: r):
            if runner.count == 12:
                os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    journal = Journal(resolve(str(job)))
    done_before = journal.load()
    assert len(done_before) == 12
    # the crash may leave a half-written journal entry behind: it must not count as done
    (job / ".bioimnb" / "journal" / "sq" / "29.tmp").write_text("half")
    assert len(journal.load()) == 12
    ran = []
    with Executor(workers=2) as ex:
        runner = Runner(ex, journal=journal, resume=True, total=30)
        kept = runner.kept(t.id for t in tasks_for(30))
        for task, _ in runner.run(tasks_for(30, str(out)), measure=lambda r: r):
            ran.append(task.id)
    assert kept == 12
    assert sorted(ran) == sorted(set(f"sq/{i}" for i in range(30)) - set(done_before))
    assert runner.count == 30 and runner.written == 18
    assert len(journal.load()) == 30
    assert sorted(int(p.stem) for p in out.glob("*.txt")) == list(range(30))


def test_cancel_stops_starting_tasks_and_raises(tmp_path):
    cancel = threading.Event()
    journal = Journal(resolve(str(tmp_path / "job")))
    with Executor(workers=1) as ex:
        runner = Runner(ex, journal=journal, cancel=cancel, total=100, source="my-output")

        def stop_at_five(p):
            if p.done == 5:
                cancel.set()

        runner.progress = stop_at_five
        with pytest.raises(Cancelled) as info:
            for _ in runner.run(tasks_for(100), measure=lambda r: r):
                pass
    # at most the window of tasks already in flight (2 per worker) finish after the cancel
    assert 5 <= runner.count <= 7
    assert len(journal.load()) == runner.count
    assert str(info.value).startswith("my-output: cancelled") and "\n" not in str(info.value)


def boom(i: int) -> tuple[str, int]:
    if i == 3:
        raise BioimnbError(f"file-{i}", "cannot be read: truncated")
    time.sleep(0.01)
    return "d", 1


def test_a_task_error_surfaces_and_is_not_journalled(tmp_path):
    journal = Journal(resolve(str(tmp_path / "job")))
    ex = Executor(workers=2)
    runner = Runner(ex, journal=journal, total=10)
    with pytest.raises(BioimnbError, match="file-3: cannot be read: truncated"):
        for _ in runner.run([Task(f"t{i}", boom, (i,)) for i in range(10)], measure=lambda r: r):
            pass
    assert "t3" not in journal.load()
    assert ex.pool is not None and ex.pool._shutdown  # the runner closed the executor


def test_run_tasks_bounds_tasks_in_flight():
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def slow(i: int) -> int:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.005)
        with lock:
            state["now"] -= 1
        return i

    with Executor(workers=4) as ex:
        got = sorted(r for _, r in run_tasks(ex, [Task(str(i), slow, (i,)) for i in range(40)], window=3))
    assert got == list(range(40)) and state["max"] <= 3


def test_identity_notices_a_file_replaced_in_place_and_a_folder_change(tmp_path):
    f = tmp_path / "a.tif"
    f.write_bytes(b"x" * 100)
    d = tmp_path / "b.zarr"
    (d / "0").mkdir(parents=True)
    (d / "0" / "c").write_bytes(b"chunk")
    res = resolve(str(tmp_path))
    before = identity(res, [str(f), str(d)])
    assert changed(before, identity(res, [str(f), str(d)])) is None
    st = f.stat()
    f.write_bytes(b"y" * 100)  # same size, new content
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert "a.tif changed" in changed(before, identity(res, [str(f), str(d)]))
    before = identity(res, [str(f), str(d)])
    (d / "0" / "c").write_bytes(b"chunk2")
    assert "b.zarr changed" in changed(before, identity(res, [str(f), str(d)]))
    assert "no longer part" in changed(before, identity(res, [str(f)]))


def test_provenance_record(tmp_path):
    f = tmp_path / "a.tif"
    f.write_bytes(b"x" * 123)
    rec = provenance(str(f), resolve(str(f)), options={"chunks": 512})
    assert rec["source"] == str(f) and rec["size"] == 123 and rec["options"] == {"chunks": 512}
    assert rec["tool"].startswith("bioimnb ") and rec["time"].endswith("+00:00")


def test_identity_of_a_remote_store_uses_its_metadata_documents(s3):
    """On object storage: file stamps are ETags; a folder (zarr store) is its metadata
    documents, so a store rewritten in place is noticed without listing every chunk."""
    import fsspec

    bucket = s3.make_bucket("identity")
    fs = fsspec.filesystem("s3", **s3.storage_options)
    fs.pipe_file(f"{bucket}/img.tif", b"x" * 50)
    fs.pipe_file(f"{bucket}/store.zarr/zarr.json", b'{"zarr_format": 3}')
    fs.pipe_file(f"{bucket}/store.zarr/0/zarr.json", b'{"shape": [1]}')
    fs.pipe_file(f"{bucket}/store.zarr/0/c/0/0/0/0/0", b"chunk")
    res = resolve(f"s3://{bucket}/", **s3.storage_options)
    paths = [f"{bucket}/img.tif", f"{bucket}/store.zarr"]
    before = identity(res, paths)
    assert before[f"{bucket}/img.tif"]["stamp"].startswith("ETag=")
    assert before[f"{bucket}/store.zarr"]["metadata_files"] == 2
    assert changed(before, identity(res, paths)) is None
    fs.pipe_file(f"{bucket}/img.tif", b"y" * 50)  # same size, new content: a new ETag
    assert changed(before, identity(res, paths)) == "img.tif changed (its modification stamp differs)"
    before = identity(res, paths)
    fs.pipe_file(f"{bucket}/store.zarr/0/zarr.json", b'{"shape": [2]}')
    assert "store.zarr changed" in changed(before, identity(res, paths))
