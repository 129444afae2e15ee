"""A transfer killed with SIGKILL in the middle resumes and copies only what is missing; a file at
its final name is always complete; memory stays flat for a file much larger than a block."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bioimnb.core.transfer import transfer


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", **extra}
    out.pop("BIOIMNB_DEBUG", None)
    return out


def kill_when(proc: subprocess.Popen[bytes], ready, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return
        if proc.poll() is not None:
            raise AssertionError(f"the transfer finished before it could be killed: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the transfer did not reach the kill point in time")


def finals(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.is_file() and ".bioimnb-transfer" not in p.parts]


def test_kill_9_then_resume_copies_only_what_is_missing_local(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    n = 30
    for i in range(n):
        (src / f"img{i:02d}.raw").write_bytes(os.urandom(256 * 1024))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bioimnb", "transfer", str(src), str(dest), "--workers", "2", "--quiet"],
        env=env(BIOIMNB_TRANSFER_BLOCK="65536", BIOIMNB_TRANSFER_DELAY="0.04"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    kill_when(proc, lambda: dest.is_dir() and len(finals(dest)) >= 6)
    present = finals(dest)
    assert 6 <= len(present) < n
    for p in present:  # whatever was cut short, a file at its final name is complete
        assert sha(p) == sha(src / p.name)
    r = transfer(src, dest)
    assert r.ok, r.summary()
    assert r.copied == n - len(present) and r.skipped == len(present)
    assert {p.name: sha(p) for p in finals(dest)} == {p.name: sha(p) for p in src.iterdir()}
    assert not (dest / ".bioimnb-transfer").exists()


def test_kill_9_during_multipart_upload_then_resume_s3(s3, tmp_path):
    bucket = s3.make_bucket("kill")
    src = tmp_path / "src"
    src.mkdir()
    n = 3
    for i in range(n):
        (src / f"stack{i}.raw").write_bytes(os.urandom(17 * 2**20))  # 3 parts of 8 MiB
    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "bioimnb", "transfer", str(src), f"s3://{bucket}/acq", "--workers", "1", "--quiet",
            "--endpoint-url", s3.endpoint_url,
        ],
        env=env(
            BIOIMNB_TRANSFER_BLOCK=str(2**20), BIOIMNB_TRANSFER_DELAY="0.06", BIOIMNB_CACHE_DIR=str(cache),
            AWS_ACCESS_KEY_ID=s3.key, AWS_SECRET_ACCESS_KEY=s3.secret,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    fs = s3.fs

    def one_done_and_more_in_flight() -> bool:
        fs.invalidate_cache()
        try:
            done = len(fs.find(f"{bucket}/acq"))
        except FileNotFoundError:
            return False
        return done >= 1 and bool(fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix="acq/").get("Uploads"))

    kill_when(proc, one_done_and_more_in_flight)
    time.sleep(0.3)  # let any request in flight land: none can complete the killed upload
    fs.invalidate_cache()
    present = fs.find(f"{bucket}/acq")
    assert 1 <= len(present) < n
    assert fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix="acq/")["Uploads"]  # one cut short
    for key in present:  # a visible object is always a whole one
        assert hashlib.sha256(fs.cat_file(key)).hexdigest() == sha(src / key.rsplit("/", 1)[1])
    os.environ["BIOIMNB_CACHE_DIR"] = str(cache)
    try:
        r = transfer(src, f"s3://{bucket}/acq", **s3.storage_options)
    finally:
        del os.environ["BIOIMNB_CACHE_DIR"]
    assert r.ok, r.summary()
    assert r.copied == n - len(present) and r.skipped == len(present)
    fs.invalidate_cache()
    assert sorted(k.rsplit("/", 1)[1] for k in fs.find(f"{bucket}/acq")) == [f"stack{i}.raw" for i in range(n)]
    # the upload the kill left unfinished was aborted by the resume
    assert fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix="acq/").get("Uploads") in (None, [])


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, threading, time
    import psutil
    from bioimnb.core.transfer import transfer
    src, dest, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    opts = json.loads(sys.argv[4])
    warm = src + ".warm"
    with open(warm, "wb") as fh:
        fh.write(b"x" * 1000)
    transfer(warm, dest + ".warm", **opts)  # imports, event loop and connections in place
    with open(src, "wb") as fh:
        fh.truncate(size)  # sparse: reads fast, costs no disk
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()
    def sample():
        global peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.005)
    t = threading.Thread(target=sample)
    t.start()
    report = transfer(src, dest, **opts)
    done.set()
    t.join()
    print(json.dumps({"base": base, "peak": peak, "ok": report.ok, "bytes": report.bytes_copied}))
    """
)


def test_memory_stays_flat_for_a_file_much_larger_than_a_block(s3, tmp_path):
    # Blocks and S3 parts are 8 MiB.  Locally a stream holds about one block; an S3 upload holds
    # a part plus the copies aiobotocore makes of it while signing and sending (about 3 parts).
    bucket = s3.make_bucket("mem")
    script = tmp_path / "mem.py"
    script.write_text(MEMORY_SCRIPT)
    cases = (
        (str(tmp_path / "out.raw"), {}, 384 * 2**20, 48 * 2**20),
        (f"s3://{bucket}/out.raw", s3.storage_options, 256 * 2**20, 96 * 2**20),
    )
    for dest, opts, size, bound in cases:
        proc = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "big.raw"), dest, str(size), json.dumps(opts)],
            capture_output=True, text=True, timeout=300, env=env(BIOIMNB_CACHE_DIR=str(tmp_path / "cache")),
        )
        assert proc.returncode == 0, proc.stderr
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        assert found["ok"] and found["bytes"] == size
        growth = found["peak"] - found["base"]
        assert growth < bound, f"{dest}: peak RSS grew by {growth / 2**20:.0f} MiB copying {size / 2**20:.0f} MiB"
        os.unlink(tmp_path / "big.raw")
