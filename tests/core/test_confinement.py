"""Root confinement, on its own: the path rules (locations/paths.py) and the opening of files
(storage.open_confined) that every reader goes through."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from bioimnb.core.errors import CorruptFile, PathEscapesRoot
from bioimnb.core.locations import browse
from bioimnb.core.locations.paths import _is_absolute, _split_rel
from bioimnb.core.storage import inside, open_confined, read_confined, resolve


@pytest.fixture
def rooted(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "canary.txt").write_text("CANARY")
    (root / "a" / "ok.txt").write_text("ok")
    (root / "a" / "link-in.txt").symlink_to(root / "a" / "ok.txt")
    (root / "a" / "link-out.txt").symlink_to(outside / "canary.txt")
    (root / "a" / "dir-out").symlink_to(outside)
    (root / "a" / "loop").symlink_to(root / "a" / "loop")
    return root, outside


@pytest.mark.parametrize(
    ("text", "parts"), [("", []), (".", []), ("a/./b/", ["a", "b"]), ("a//b", ["a", "b"])]
)
def test_split_rel(text: str, parts: list[str]) -> None:
    assert _split_rel(text, True) == parts


@pytest.mark.parametrize("text", ["/etc", "s3://b/k", "file:///x", "\\\\server\\share", "http://h/"])
def test_absolute_forms(text: str) -> None:
    assert _is_absolute(text)


@pytest.mark.parametrize(
    "rel", ["..", "a/../..", "/etc/passwd", "a/link-out.txt", "a/dir-out/canary.txt", "a/\x00x", "s3://x/y"]
)
def test_every_escape_is_refused(rooted: tuple[Path, Path], rel: str) -> None:
    root, _ = rooted
    loc = browse(root, root=root)
    with pytest.raises(PathEscapesRoot) as info:
        loc.resolve(rel)
    assert str(root) not in str(info.value)  # the root itself is never disclosed


def test_links_inside_the_root_are_followed(rooted: tuple[Path, Path]) -> None:
    root, _ = rooted
    assert browse(root, root=root).resolve("a/link-in.txt") == str((root / "a" / "ok.txt").resolve())


def test_inside_is_not_fooled_by_a_common_prefix(tmp_path: Path) -> None:
    assert inside(str(tmp_path / "root"), str(tmp_path / "root"))
    assert inside(str(tmp_path / "root" / "x"), str(tmp_path / "root"))
    assert not inside(str(tmp_path / "root-other" / "x"), str(tmp_path / "root"))


def test_open_confined(rooted: tuple[Path, Path]) -> None:
    root, outside = rooted
    real_root = os.path.realpath(root)
    with open_confined(str(root / "a" / "link-in.txt"), real_root) as fh:
        assert fh.read() == b"ok"
    for name in ("link-out.txt", "dir-out/canary.txt"):
        with pytest.raises(PathEscapesRoot):
            open_confined(str(root / "a" / name), real_root)
    with pytest.raises(CorruptFile, match="symbolic links"):
        open_confined(str(root / "a" / "loop"), None)
    with pytest.raises(CorruptFile, match="is a folder"):
        open_confined(str(root / "a"), real_root)
    # Without a root, links are followed (a user's own files), non-regular files still refused.
    with open_confined(str(root / "a" / "link-out.txt"), None) as fh:
        assert fh.read() == b"CANARY"


def test_a_fifo_is_refused_at_once(rooted: tuple[Path, Path]) -> None:
    root, _ = rooted
    fifo = root / "a" / "pipe"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def attempt() -> None:
        try:
            open_confined(str(fifo), os.path.realpath(root))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            done.append(exc)

    t0 = time.perf_counter()
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "opening a FIFO blocked"
    assert isinstance(done[0], CorruptFile) and "not a regular file" in str(done[0])
    assert time.perf_counter() - t0 < 5


def test_read_confined_caps_the_size(tmp_path: Path) -> None:
    big = tmp_path / "zarr.json"
    big.write_bytes(b"{" + b" " * 5000 + b"}")
    with pytest.raises(CorruptFile, match="too large for metadata"):
        read_confined(str(big), None, limit=1000)
    assert read_confined(str(big), None, limit=10_000).startswith(b"{")


def test_resolve_with_a_root_refuses_an_outside_source(rooted: tuple[Path, Path]) -> None:
    root, outside = rooted
    with pytest.raises(PathEscapesRoot):
        resolve(str(outside / "canary.txt"), root=root)
    with pytest.raises(PathEscapesRoot):
        resolve(str(root / "a" / "link-out.txt"), root=root)
    assert resolve(str(root / "a" / "ok.txt"), root=root).root == os.path.realpath(root)
