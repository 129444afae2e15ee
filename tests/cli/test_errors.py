"""Every user-facing error of every command is one line on stderr and exit status 2, never a
traceback: hostile and broken inputs through the real command, and the last-resort translation
in ``main()`` (and in ``%bioim``) of whatever a command raises."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _path in (str(TESTS), str(TESTS / "server")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
import fixtures  # noqa: E402
import hostile  # noqa: E402

from bioimnb.cli import main as cli_main  # noqa: E402

ENV = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
ENV.pop("BIOIMNB_DEBUG", None)


def run(*args: str, timeout: float = 90, preexec: Any = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bioimnb", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        stdin=subprocess.DEVNULL,
        preexec_fn=preexec,
        cwd=cwd,
    )


def one_line(proc: subprocess.CompletedProcess[str], *parts: str) -> str:
    """Exit 2, and stderr exactly one line ``bioimnb: error: ...`` holding every ``part``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    line = lines[0]
    assert line.startswith("bioimnb: error: "), line
    assert "Traceback" not in proc.stderr
    for part in parts:
        assert part in line, (part, line)
    return line


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli-errors")
    fixtures.ome_tiff_subifd(d / "p.ome.tif", scenes=1)
    return d / "p.ome.tif"


@pytest.fixture(scope="module")
def broken_level(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NGFF 0.5 pyramid whose level 1 has a broken ``zarr.json``."""
    path = tmp_path_factory.mktemp("broken-level") / "b.ome.zarr"
    fixtures.ngff_image(path, "0.5")
    levels = sorted(p for p in path.iterdir() if (p / "zarr.json").is_file() and p.name != "labels")
    assert len(levels) == 3, levels
    (levels[1] / "zarr.json").write_text('{"zarr_format": 3, "node_type": "arr')
    return path


# -- broken and hostile inputs, through the real command -------------------------------------


def test_pyramid_level_with_broken_zarr_json(broken_level, tmp_path):
    one_line(run("info", str(broken_level)), "b.ome.zarr", "zarr.json")
    one_line(run("info", str(broken_level), "--json"), "b.ome.zarr", "zarr.json")
    one_line(run("convert", str(broken_level), str(tmp_path / "o.ome.zarr"), "--quiet"), "b.ome.zarr", "zarr.json")


def test_symlink_loops(tmp_path, src):
    (tmp_path / "self.ome.tif").symlink_to("self.ome.tif")
    (tmp_path / "loopdir").symlink_to("loopdir")  # loopdir/anything: ELOOP
    for target in ("self.ome.tif", "loopdir/x.ome.tif"):
        one_line(run("info", str(tmp_path / target)), target)
        one_line(run("convert", str(tmp_path / target), str(tmp_path / "o.ome.zarr"), "--quiet"), target)
    # Inside a zarr: a chunk that is a link to itself.
    hostile._ngff04(tmp_path / "z.ome.zarr", [1, 64, 64], [1, 32, 32])
    chunk = tmp_path / "z.ome.zarr" / "0" / "0" / "0" / "0"
    chunk.unlink()
    chunk.symlink_to(chunk)
    one_line(run("convert", str(tmp_path / "z.ome.zarr"), str(tmp_path / "o2.ome.zarr"), "--quiet"), "z.ome.zarr")
    # A listing of the folder holding them is not an error.
    proc = run("ls", str(tmp_path), "--json", timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_negative_zarr_shape(tmp_path):
    hostile._ngff04(tmp_path / "neg.ome.zarr", [1, -64, 64], [1, 32, 32], write_chunks=False)
    one_line(run("info", str(tmp_path / "neg.ome.zarr")), "neg.ome.zarr")
    one_line(run("convert", str(tmp_path / "neg.ome.zarr"), str(tmp_path / "o.ome.zarr"), "--quiet"), "neg.ome.zarr")


def test_tiff_shorter_than_it_declares(tmp_path):
    import numpy as np
    import tifffile

    path = tmp_path / "short.tif"
    tifffile.imwrite(path, np.arange(512 * 512, dtype=np.uint16).reshape(512, 512))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    one_line(run("info", str(path)), "short.tif")
    one_line(run("convert", str(path), str(tmp_path / "o.ome.zarr"), "--quiet"), "short.tif")


def test_decompression_bomb_is_refused_quickly(tmp_path):
    hostile.zlib_bomb_tiff(tmp_path / "bomb.tif")  # declares one 1 TB strip
    start = time.monotonic()
    one_line(run("convert", str(tmp_path / "bomb.tif"), str(tmp_path / "o.ome.zarr"), "--quiet"), "bomb.tif")
    assert time.monotonic() - start < 60


def test_real_memory_error_is_one_line(tmp_path, monkeypatch):
    # With the decode limit lifted, the 1 TB strip reaches the allocator; an 8 GiB address-space
    # limit makes that a MemoryError on any machine (never the OOM killer).
    hostile.zlib_bomb_tiff(tmp_path / "bomb.tif")

    def address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    monkeypatch.setitem(ENV, "BIOIMNB_MAX_DECODE_BYTES", str(10**13))
    line = one_line(
        run("convert", str(tmp_path / "bomb.tif"), str(tmp_path / "o.ome.zarr"), "--quiet", preexec=address_space),
        "bomb.tif",
    )
    assert "memory" in line.lower(), line


def _file_size_limit(limit: int) -> Any:
    def apply() -> None:  # in the child: writes past `limit` bytes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("name", ["full.ome.zarr", "full.ome.tif"])
def test_write_failure_mid_conversion(tmp_path, src, name):
    # A real write failure of the file system (the process's file size limit: EFBIG), as a full
    # disk (ENOSPC) would give.
    proc = run(
        "convert", str(src), str(tmp_path / name), "--quiet", "--compression", "none",
        preexec=_file_size_limit(64 * 1024),
    )
    one_line(proc, name, "File too large")


def test_destination_that_cannot_be_created(src, tmp_path):
    one_line(run("convert", str(src), "/proc/nope/a.ome.zarr", "--quiet"), "/proc/nope")
    one_line(run("convert", str(src), "/proc/nope/a.ome.tif", "--quiet"), "/proc/nope")


def test_demo_into_a_folder_that_cannot_be_created():
    # The demo writer raises a plain OSError: the last resort in main() names the folder.
    one_line(run("demo", "/proc/nope/data", "--small"), "/proc/nope", "No such file or directory")


def test_read_only_destination_folder(src, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    tmp_path.chmod(0o755)
    if os.geteuid() != 0:
        one_line(run("convert", str(src), str(ro / "a.ome.zarr"), "--quiet"), "ro")
        return
    # Root writes anywhere: convert once as root (so every module the command needs is
    # imported), then drop to 'nobody' in the same process and convert into the folder.
    warm = tmp_path / "warm"
    warm.mkdir()
    for name in ("a.ome.zarr", "a.ome.tif"):
        code = (
            "import os, sys, contextlib, io\n"
            "import bioimnb.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert bioimnb.cli.main(['convert', {str(src)!r}, {str(warm / name)!r}, '--quiet']) == 0\n"
            "os.setgid(65534); os.setuid(65534)\n"
            f"sys.exit(bioimnb.cli.main(['convert', {str(src)!r}, {str(ro / name)!r}, '--quiet']))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=90, env=ENV, cwd=tmp_path
        )
        one_line(proc, "ro")
        assert not (ro / name).exists()


def test_destination_type_it_does_not_write(src, tmp_path):
    one_line(run("convert", str(src), str(tmp_path / "out" / "a.png"), "--quiet"), "a.png")
    assert not (tmp_path / "out" / "a.png").exists()


def test_fifos_do_not_hang_info_or_ls(tmp_path, src):
    hostile.fifo(tmp_path / "pipe.ome.tif")
    hostile.fifo(tmp_path / "f.ome.zarr" / "zarr.json")
    for name in ("pipe.ome.tif", "f.ome.zarr"):
        one_line(run("info", str(tmp_path / name), timeout=30), name)
    proc = run("ls", str(tmp_path), timeout=30)
    assert proc.returncode == 0 and len(proc.stderr.splitlines()) <= 1, proc.stderr


# -- the last resort in main() ---------------------------------------------------------------


def _raise(exc: BaseException) -> Any:
    def raiser(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return raiser


@pytest.mark.parametrize(
    ("command", "raised", "expected"),
    [
        (
            "convert",
            OSError(errno.ENOSPC, "No space left on device"),
            "bioimnb: error: OUT/o.ome.zarr: No space left on device",
        ),
        (
            "convert",
            OSError(errno.ENOSPC, "No space left on device", "OUT/o.ome.zarr/0/c/0/0"),
            "bioimnb: error: OUT/o.ome.zarr/0/c/0/0: No space left on device",
        ),
        (
            "info",
            OSError(errno.ELOOP, "Too many levels of symbolic links", "SRC/loop"),
            "bioimnb: error: SRC/loop: Too many levels of symbolic links",
        ),
        (
            "info",
            MemoryError(),
            "bioimnb: error: SRC/p.ome.tif: not enough memory",
        ),
        (
            "convert",
            MemoryError("Unable to allocate 931. GiB for an array"),
            "bioimnb: error: SRC/p.ome.tif: not enough memory",
        ),
        (
            "info",
            ZeroDivisionError("division by zero"),
            "bioimnb: error: SRC/p.ome.tif: cannot be read: ZeroDivisionError: division by zero",
        ),
        (
            "info",
            KeyError("axes"),
            "bioimnb: error: SRC/p.ome.tif: cannot be read: KeyError: 'axes'",
        ),
        (
            "info",
            RuntimeError("first line\n  second line\nthird"),
            "bioimnb: error: SRC/p.ome.tif: cannot be read: RuntimeError: first line",
        ),
    ],
)
def test_main_turns_any_exception_into_one_line(monkeypatch, capsys, src, tmp_path, command, raised, expected):
    import bioimnb.core.convert
    import bioimnb.core.images

    monkeypatch.delenv("BIOIMNB_DEBUG", raising=False)
    monkeypatch.setattr(bioimnb.core.images, "open_image", _raise(raised))
    monkeypatch.setattr(bioimnb.core.convert, "convert", _raise(raised))
    if isinstance(raised, OSError) and raised.filename:
        raised.filename = raised.filename.replace("OUT", str(tmp_path)).replace("SRC", str(src.parent))
    argv = ["info", str(src)] if command == "info" else ["convert", str(src), str(tmp_path / "o.ome.zarr"), "--quiet"]

    status = cli_main(argv)

    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(expected.replace("OUT", str(tmp_path)).replace("SRC", str(src.parent))), lines[0]


def test_credentials_are_not_shown_by_the_last_resort(monkeypatch, capsys):
    import bioimnb.core.images

    monkeypatch.setattr(bioimnb.core.images, "open_image", _raise(ValueError("boom")))
    status = cli_main(["info", "https://alice:s3cr3t@example.org/x.ome.tif?X-Amz-Signature=abc"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("bioimnb: error: https://example.org/x.ome.tif: ")
    assert "s3cr3t" not in err and "Signature" not in err


def test_debug_setting_shows_the_traceback(monkeypatch):
    import bioimnb.core.images

    monkeypatch.setenv("BIOIMNB_DEBUG", "1")
    monkeypatch.setattr(bioimnb.core.images, "open_image", _raise(ZeroDivisionError("x")))
    with pytest.raises(ZeroDivisionError):
        cli_main(["info", "whatever.tif"])


# -- the same in %bioim -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ip():
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "bioimnb")
    return shell


def test_magic_info_of_a_broken_level_is_one_line(ip, broken_level):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as excinfo:
        ip.run_line_magic("bioim", f"info {broken_level}")
    message = str(excinfo.value)
    assert "\n" not in message and message.startswith("bioimnb: ") and "zarr.json" in message


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (MemoryError(), "not enough memory"),
        (OSError(errno.ELOOP, "Too many levels of symbolic links", "/x/loop"), "/x/loop: Too many levels of symbolic links"),
        (ZeroDivisionError("division by zero\nmore"), "cannot be read: ZeroDivisionError: division by zero"),
    ],
)
def test_magic_turns_any_exception_into_one_line(ip, monkeypatch, src, raised, expected):
    from IPython.core.error import UsageError

    import bioimnb

    monkeypatch.setattr(bioimnb, "open_image", _raise(raised))
    with pytest.raises(UsageError) as excinfo:
        ip.run_line_magic("bioim", f"info {src}")
    message = str(excinfo.value)
    assert "\n" not in message and message.startswith("bioimnb: ") and expected in message, message
