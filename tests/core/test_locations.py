"""browse()/Location.list(): one level, paged, images as one entry, confined to a root.

Local folders, a real SeaweedFS S3 server (``s3`` fixture) and a real HTTP server
(``http_server`` fixture); nothing is mocked except where a syscall must be counted or a
permission error provoked while running as root.
"""

from __future__ import annotations

import base64
import math
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import fsspec
import pytest

import bioimnb
from bioimnb.core import locations
from bioimnb.core.errors import (
    AccessDenied,
    BioimnbError,
    PathEscapesRoot,
    SourceNotFound,
    StorageUnreachable,
)
from bioimnb.core.locations import Entry, InvalidPageToken, NotAFolder, browse

# -- a mixed folder -----------------------------------------------------------------------------

MRXS_FILES = {"Slidedat.ini": 10, "Index.dat": 20, "Data0000.dat": 300, "Data0001.dat": 400}
MRXS_SIZE = 100 + sum(MRXS_FILES.values())


def make_mixed(root: Path) -> Path:
    """A folder with every kind of entry; returns it."""
    root.mkdir(parents=True, exist_ok=True)
    zarr = root / "plate.ome.zarr"
    (zarr / "A" / "1" / "0").mkdir(parents=True)
    (zarr / "zarr.json").write_text(
        '{"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5", "plate": {"wells": []}}}}'
    )
    for i in range(300):  # many chunk files that must never be listed or stat-ed
        (zarr / "A" / "1" / "0" / f"c{i}").write_bytes(b"x")
    (root / "v2group").mkdir()  # not named .zarr: recognised by the OME metadata in its .zattrs
    (root / "v2group" / ".zattrs").write_text('{"multiscales": [{"datasets": [{"path": "0"}]}]}')
    (root / "v2group" / "0").mkdir()
    (root / "v3noext").mkdir()
    (root / "v3noext" / "zarr.json").write_text('{"node_type": "group", "attributes": {"ome": {"plate": {}}}}')
    (root / "zarrarray").mkdir()  # a bare zarr array (e.g. a resolution level): a folder of chunks
    (root / "zarrarray" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array"}')
    (root / "slide.mrxs").write_bytes(b"m" * 100)
    (root / "slide").mkdir()
    for name, size in MRXS_FILES.items():
        (root / "slide" / name).write_bytes(b"d" * size)
    (root / "slide" / "sub").mkdir()  # a folder inside: not a file of the slide
    (root / "slide" / "sub" / "deep.dat").write_bytes(b"z" * 999)
    (root / "orphan.mrxs").write_bytes(b"o" * 7)  # no companion folder
    (root / "a.ome.tif").write_bytes(b"t" * 123)
    (root / "slide-2.tif").write_bytes(b"s" * 5)
    (root / "CAPS.CZI").write_bytes(b"c" * 9)
    (root / "notes.txt").write_bytes(b"hello")
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "nested" / "deeper" / "x.tif").write_bytes(b"x")
    (root / ".hidden").write_bytes(b"h")
    (root / ".hiddendir").mkdir()
    return root


# (name, kind, format, size, files) of make_mixed, sorted by name
MIXED = [
    ("CAPS.CZI", "image", "CZI", 9, None),
    ("a.ome.tif", "image", "OME-TIFF", 123, None),
    ("nested", "folder", None, None, None),
    ("notes.txt", "file", None, 5, None),
    ("orphan.mrxs", "image", "MRXS", 7, 1),
    ("plate.ome.zarr", "image", "OME-Zarr plate", None, None),
    ("slide-2.tif", "image", "TIFF", 5, None),
    ("slide.mrxs", "image", "MRXS", MRXS_SIZE, 1 + len(MRXS_FILES)),
    ("v2group", "image", "OME-Zarr", None, None),
    ("v3noext", "image", "OME-Zarr plate", None, None),
    ("zarrarray", "image", "Zarr array", None, None),
]


def rows(entries: list[Entry]) -> list[tuple[Any, ...]]:
    return [(e.name, e.kind, e.format, e.size, e.files) for e in entries]


def all_pages(loc: locations.Location, page_size: int) -> list[list[Entry]]:
    pages, token = [], None
    while True:
        page = loc.list(page_size=page_size, page=token)
        pages.append(page.entries)
        assert len(page.entries) <= page_size
        token = page.next_page
        if token is None:
            return pages
        assert len(pages) < 1000, "paging does not end"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mixed(tmp_path_factory.mktemp("mixed") / "data")


# -- local ----------------------------------------------------------------------------------------


def test_local_listing_classifies_each_entry(mixed: Path) -> None:
    page = browse(mixed).list()
    assert rows(page.entries) == MIXED
    assert page.next_page is None
    assert page.location == str(mixed)
    by_name = {e.name: e for e in page.entries}
    assert by_name["a.ome.tif"].path == str(mixed / "a.ome.tif")
    assert by_name["plate.ome.zarr"].path == str(mixed / "plate.ome.zarr")
    # the public entry point is the same function
    assert rows(bioimnb.browse(str(mixed)).list().entries) == MIXED


def test_local_to_dict_shape(mixed: Path) -> None:
    data = browse(mixed).list(page_size=3).to_dict()
    assert list(data) == ["location", "entries", "next_page"]
    assert isinstance(data["next_page"], str)
    for entry in data["entries"]:
        assert list(entry) == ["name", "path", "kind", "format", "size", "files", "incomplete", "error"]


def test_local_show_hidden(mixed: Path) -> None:
    names = [e.name for e in browse(mixed, show_hidden=True).list().entries]
    assert ".hidden" in names and ".hiddendir" in names
    assert names == sorted(names)
    assert len(names) == len(MIXED) + 2


def test_zarr_listing_does_not_walk_chunks(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_scandir = os.scandir

    def spy(path: Any = ".") -> Any:
        seen.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    browse(mixed).list()
    assert not any("plate.ome.zarr" in p for p in seen)
    assert sorted(seen) == sorted([str(mixed), str(mixed / "slide")])  # the listing + MRXS folder


@pytest.mark.parametrize("page_size", [1, 2, 3, 4, 7, 10, 100])
def test_local_paging_concatenates_to_full_listing(mixed: Path, page_size: int) -> None:
    loc = browse(mixed)
    pages = all_pages(loc, page_size)
    assert [rows(p) for p in pages][-1] is not None
    assert sum((rows(p) for p in pages), []) == MIXED
    assert len(pages) == math.ceil(len(MIXED) / page_size)
    assert all(len(p) == page_size for p in pages[:-1])


def test_local_paging_with_many_companion_folders(tmp_path: Path) -> None:
    # every second name is an MRXS companion folder: the page must still be full
    for i in range(12):
        (tmp_path / f"s{i:02d}.mrxs").write_bytes(b"m")
        (tmp_path / f"s{i:02d}").mkdir()
        (tmp_path / f"s{i:02d}" / "Index.dat").write_bytes(b"ii")
    pages = all_pages(browse(tmp_path), 5)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [e.name for p in pages for e in p] == [f"s{i:02d}.mrxs" for i in range(12)]
    assert all(e.files == 2 and e.size == 3 for p in pages for e in p)


def test_local_empty_folder(tmp_path: Path) -> None:
    page = browse(tmp_path).list()
    assert page.entries == [] and page.next_page is None


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """100,000 files (hard links to one file: creating 100k inodes is several times slower)."""
    base = tmp_path_factory.mktemp("big")
    folder = base / "many"
    folder.mkdir()
    sources = [base / "src0.tif", base / "src1.tif"]  # ext4 allows 65,000 links per inode
    for src in sources:
        src.write_bytes(b"1234")
    link = os.link
    for i in range(100_000):
        link(sources[i % 2], folder / f"img{i:06d}.tif")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_100k_files_only_page_is_stat_ed(big_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = {"n": 0}
    made = {"n": 0}
    real_stat, real_lstat = os.stat, os.lstat

    def count_stat(*args: Any, **kwargs: Any) -> Any:
        stats["n"] += 1
        return real_stat(*args, **kwargs)

    def count_lstat(*args: Any, **kwargs: Any) -> Any:
        stats["n"] += 1
        return real_lstat(*args, **kwargs)

    class CountingEntry(Entry):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made["n"] += 1
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(os, "stat", count_stat)
    monkeypatch.setattr(os, "lstat", count_lstat)
    monkeypatch.setattr(locations.local, "Entry", CountingEntry)  # the local lister makes the entries

    loc = browse(big_folder)
    page = loc.list(page_size=100)
    assert [e.name for e in page.entries] == [f"img{i:06d}.tif" for i in range(100)]
    assert all(e.kind == "image" and e.format == "TIFF" and e.size == 4 for e in page.entries)
    assert made["n"] == 100
    assert stats["n"] <= 2 * 100, stats

    stats["n"] = made["n"] = 0
    second = loc.list(page_size=100, page=page.next_page)
    assert [e.name for e in second.entries] == [f"img{i:06d}.tif" for i in range(100, 200)]
    assert made["n"] == 100 and stats["n"] <= 200

    # the last page of 100,000 ends the listing
    last_token = base64.urlsafe_b64encode(b"n:img099994.tif").decode().rstrip("=")
    last = loc.list(page_size=100, page=last_token)
    assert [e.name for e in last.entries] == [f"img{i:06d}.tif" for i in range(99995, 100000)]
    assert last.next_page is None


def test_missing_folder_is_source_not_found(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound) as err:
        browse(tmp_path / "nope").list()
    assert str(err.value).startswith(str(tmp_path / "nope") + ": ")
    assert "\n" not in str(err.value)


def test_listing_a_file_is_not_a_folder(mixed: Path) -> None:
    with pytest.raises(NotAFolder) as err:
        browse(mixed / "notes.txt").list()
    assert isinstance(err.value, BioimnbError)
    assert str(err.value) == f"{mixed / 'notes.txt'}: not a folder"


def test_permission_denied_is_access_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:  # a real refusal when not running as root
        locked.chmod(0)
        try:
            with pytest.raises(AccessDenied):
                browse(locked).list()
        finally:
            locked.chmod(0o755)

    def refuse(path: Any = ".") -> Any:
        raise PermissionError(13, "Permission denied", os.fspath(path))

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(AccessDenied) as err:
        browse(locked).list()
    assert str(err.value) == f"{locked}: permission denied"


@pytest.mark.parametrize(
    "token", ["!!!", "", "bm90LWEtdG9rZW4", base64.urlsafe_b64encode(b"c:s3token").decode()]
)
def test_invalid_page_token(mixed: Path, token: str) -> None:
    with pytest.raises(InvalidPageToken) as err:
        browse(mixed).list(page=token)
    assert isinstance(err.value, BioimnbError)
    assert "invalid page token" in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_page_size(mixed: Path) -> None:
    with pytest.raises(ValueError):
        browse(mixed).list(page_size=0)


def test_child_and_parent_unrooted(mixed: Path) -> None:
    loc = browse(mixed)
    nested = loc.child("nested")
    assert nested.url == str(mixed / "nested")
    assert rows(nested.list().entries) == [("deeper", "folder", None, None, None)]
    assert nested.parent is not None and nested.parent.url == str(mixed)
    assert browse("/").parent is None


# -- rooted -----------------------------------------------------------------------------------------


@pytest.fixture()
def rooted_tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "inside" / "deeper").mkdir(parents=True)
    (root / "inside" / "a.tif").write_bytes(b"aaaa")
    (root / "top.txt").write_bytes(b"t")
    outside.mkdir()
    (outside / "secret.tif").write_bytes(b"s" * 50)
    (outside / "img.zarr").mkdir()
    (root / "link_in").symlink_to(root / "inside")
    (root / "rel_link_in").symlink_to("inside/a.tif")
    (root / "link_out").symlink_to(outside)
    (root / "file_out.tif").symlink_to(outside / "secret.tif")
    (root / "zarr_out.zarr").symlink_to(outside / "img.zarr")
    (root / "dangling").symlink_to(root / "missing")
    (root / "inside" / "up").symlink_to("..")  # inside the root: fine
    (root / "inside" / "escape").symlink_to("../..")  # the root's parent: refused
    return root, outside


def test_rooted_listing_paths_are_relative(rooted_tree: tuple[Path, Path]) -> None:
    root, _ = rooted_tree
    loc = browse(".", root=root)
    assert loc.parent is None and loc.relpath == ""
    page = loc.list()
    assert page.location == ""
    got = {e.name: (e.path, e.kind, e.format, e.size) for e in page.entries}
    assert got == {
        "dangling": ("dangling", "file", None, None),
        "file_out.tif": ("file_out.tif", "file", None, None),
        "inside": ("inside", "folder", None, None),
        "link_in": ("link_in", "folder", None, None),
        "link_out": ("link_out", "file", None, None),
        "rel_link_in": ("rel_link_in", "file", None, 4),
        "top.txt": ("top.txt", "file", None, 1),
        "zarr_out.zarr": ("zarr_out.zarr", "file", None, None),
    }
    inside = loc.child("inside")
    assert inside.relpath == "inside"
    page = inside.list()
    assert page.location == "inside"
    assert {e.path: e.kind for e in page.entries} == {
        "inside/a.tif": "image",
        "inside/deeper": "folder",
        "inside/up": "folder",
        "inside/escape": "file",
    }
    assert inside.parent is not None and inside.parent.relpath == ""
    assert inside.child("deeper").parent == inside


def test_rooted_symlink_inside_root_is_followed(rooted_tree: tuple[Path, Path]) -> None:
    root, _ = rooted_tree
    via_link = browse("link_in", root=root)
    assert [(e.path, e.size) for e in via_link.list().entries] == [
        ("link_in/a.tif", 4),
        ("link_in/deeper", None),
        ("link_in/escape", None),
        ("link_in/up", None),
    ]
    assert via_link.resolve("a.tif") == os.path.realpath(root / "inside" / "a.tif")
    assert browse(".", root=root).child("inside/up/inside/up").relpath == "inside/up/inside/up"


@pytest.mark.parametrize(
    "relpath",
    [
        "..",
        "../outside",
        "inside/../../outside",
        "inside/../top.txt",  # harmless, but '..' is refused outright under a root
        "/etc",
        "/etc/passwd",
        "link_out",
        "link_out/secret.tif",
        "file_out.tif",
        "zarr_out.zarr",
        "inside/escape",
        "inside/escape/outside",
        "s3://bucket/key",
    ],
)
def test_rooted_escapes_are_refused(rooted_tree: tuple[Path, Path], relpath: str) -> None:
    root, _ = rooted_tree
    loc = browse(".", root=root)
    for attempt in (lambda: loc.child(relpath), lambda: loc.resolve(relpath)):
        with pytest.raises(PathEscapesRoot) as err:
            attempt()
        message = str(err.value)
        assert "path escapes the root" in message and "\n" not in message
        assert str(root) not in message  # the root itself is not disclosed


@pytest.mark.parametrize("relpath", ["..", "../..", "escape", "escape/outside", "/tmp"])
def test_rooted_escapes_from_a_subfolder(rooted_tree: tuple[Path, Path], relpath: str) -> None:
    root, _ = rooted_tree
    inside = browse("inside", root=root)
    with pytest.raises(PathEscapesRoot):
        inside.child(relpath)
    with pytest.raises(PathEscapesRoot):
        inside.resolve(relpath)


def test_browse_with_root_refuses_outside(rooted_tree: tuple[Path, Path]) -> None:
    root, outside = rooted_tree
    with pytest.raises(PathEscapesRoot):
        browse(str(outside), root=root)
    with pytest.raises(PathEscapesRoot):
        browse("../outside", root=root)
    with pytest.raises(PathEscapesRoot):
        browse("link_out", root=root)
    # an absolute path inside the root is accepted and made relative
    loc = browse(str(root / "inside"), root=root)
    assert loc.relpath == "inside"
    assert [e.path for e in loc.list().entries][0] == "inside/a.tif"
    # and so is the root itself through a symlinked spelling
    alias = root.parent / "alias"
    alias.symlink_to(root)
    assert browse(str(alias / "inside"), root=root).relpath == "inside"


def test_rooted_parent_stops_at_root(rooted_tree: tuple[Path, Path]) -> None:
    root, _ = rooted_tree
    loc = browse("inside/deeper", root=root)
    chain = []
    while loc is not None:
        chain.append(loc.relpath)
        loc = loc.parent
    assert chain == ["inside/deeper", "inside", ""]


def test_rooted_errors_name_the_relative_path(rooted_tree: tuple[Path, Path]) -> None:
    root, _ = rooted_tree
    with pytest.raises(SourceNotFound) as err:
        browse("inside/missing", root=root).list()
    assert str(err.value) == "inside/missing: no such file or directory"
    with pytest.raises(NotAFolder) as err2:
        browse("top.txt", root=root).list()
    assert str(err2.value) == "top.txt: not a folder"
    with pytest.raises(InvalidPageToken) as err3:
        browse(".", root=root).list(page="xyz")
    assert str(err3.value).startswith(".: invalid page token")


def test_root_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound):
        browse(".", root=tmp_path / "missing")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(NotAFolder):
        browse(".", root=tmp_path / "f.txt")


# -- other fsspec filesystems ----------------------------------------------------------------------


def test_memory_filesystem() -> None:
    fs = fsspec.filesystem("memory")
    base = "/bioimnb-test-mem"
    fs.pipe(
        {
            f"{base}/b.ome.tif": b"12345",
            f"{base}/a.txt": b"1",
            f"{base}/img.zarr/zarr.json": b"{}",
            f"{base}/grp/.zgroup": b"{}",
            f"{base}/grp/.zattrs": b'{"bioformats2raw.layout": 3}',
            f"{base}/slide.mrxs": b"mm",
            f"{base}/slide/Index.dat": b"iii",
            f"{base}/sub/x.tif": b"x",
        }
    )
    try:
        loc = browse(f"memory://{base}")
        assert rows(loc.list().entries) == [
            ("a.txt", "file", None, 1, None),
            ("b.ome.tif", "image", "OME-TIFF", 5, None),
            ("grp", "image", "OME-Zarr", None, None),
            ("img.zarr", "folder", "zarr group", None, None),  # a name is not metadata
            ("slide.mrxs", "image", "MRXS", 5, 2),
            ("sub", "folder", None, None, None),
        ]
        assert loc.list().entries[0].path == f"memory://{base}/a.txt"
        assert sum((rows(p) for p in all_pages(loc, 4)), []) == rows(loc.list().entries)
        with pytest.raises(SourceNotFound):
            browse(f"memory://{base}/missing").list()
        with pytest.raises(NotAFolder):
            browse(f"memory://{base}/a.txt").list()
    finally:
        fs.rm(base, recursive=True)


# -- HTTP -------------------------------------------------------------------------------------------


def test_http_listing(mixed: Path, http_server: Any) -> None:
    base = http_server(mixed.parent)
    loc = browse(f"{base}/data/")
    page = loc.list()
    assert rows(page.entries) == MIXED
    assert page.location == f"{base}/data"
    by_name = {e.name: e for e in page.entries}
    assert by_name["a.ome.tif"].path == f"{base}/data/a.ome.tif"
    assert by_name["nested"].path == f"{base}/data/nested"
    # entry paths can be passed back
    assert rows(browse(by_name["nested"].path).list().entries) == [
        ("deeper", "folder", None, None, None)
    ]
    assert sum((rows(p) for p in all_pages(loc, 3)), []) == MIXED


def test_http_quoted_names_and_range_reads(tmp_path: Path, http_server: Any) -> None:
    (tmp_path / "my image.ome.tif").write_bytes(bytes(range(256)) * 4)
    base = http_server(tmp_path)
    (entry,) = browse(base).list().entries
    assert (entry.name, entry.size, entry.format) == ("my image.ome.tif", 1024, "OME-TIFF")
    assert entry.path == f"{base}/my%20image.ome.tif"
    rooted = browse(".", root=base)
    assert [e.path for e in rooted.list().entries] == ["my image.ome.tif"]
    assert rooted.resolve("my image.ome.tif") == entry.path
    fs = fsspec.filesystem("http", skip_instance_cache=True)
    with fs.open(entry.path, "rb", block_size=16) as fh:  # random access needs Range
        fh.seek(300)
        assert fh.read(10) == bytes(range(44, 54))
    assert fs.cat_file(entry.path, start=1000, end=1024) == (bytes(range(256)) * 4)[1000:]


def test_http_errors(mixed: Path, http_server: Any) -> None:
    base = http_server(mixed.parent)
    with pytest.raises(SourceNotFound):
        browse(f"{base}/data/missing/").list()
    with pytest.raises(NotAFolder):
        browse(f"{base}/data/notes.txt").list()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StorageUnreachable):
        browse(f"http://127.0.0.1:{port}/data/").list()


def test_http_rooted(mixed: Path, http_server: Any) -> None:
    base = http_server(mixed.parent)
    loc = browse("data/nested", root=base)
    assert [e.path for e in loc.list().entries] == ["data/nested/deeper"]
    with pytest.raises(PathEscapesRoot):
        browse("..", root=f"{base}/data")
    with pytest.raises(PathEscapesRoot):
        browse("http://example.org/data", root=f"{base}/data")


# -- S3 (real SeaweedFS) -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_bucket(s3: Any) -> str:
    bucket = s3.make_bucket("loc")
    objects = {
        "proj/": b"",  # a folder marker
        "proj/plate.ome.zarr/zarr.json": b'{"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"plate": {}}}}',
        "proj/v2group/.zattrs": b'{"multiscales": [{"datasets": [{"path": "0"}]}]}',
        "proj/v2group/.zgroup": b"{}",
        "proj/v3noext/zarr.json": b'{"node_type": "group", "attributes": {"ome": {"plate": {}}}}',
        "proj/zarrarray/zarr.json": b'{"zarr_format": 3, "node_type": "array"}',
        "proj/slide.mrxs": b"m" * 100,
        "proj/orphan.mrxs": b"o" * 7,
        "proj/a.ome.tif": b"t" * 123,
        "proj/slide-2.tif": b"s" * 5,
        "proj/CAPS.CZI": b"c" * 9,
        "proj/notes.txt": b"hello",
        "proj/nested/deeper/x.tif": b"x",
        "proj/.hidden": b"h",
        "proj/.hiddendir/x": b"h",
        "top.txt": b"top",
        "empty/": b"",  # an empty folder: only its marker
    }
    for name, size in MRXS_FILES.items():
        objects[f"proj/slide/{name}"] = b"d" * size
    objects["proj/slide/sub/deep.dat"] = b"z" * 999
    for i in range(400):  # many keys inside the zarr: never listed
        objects[f"proj/plate.ome.zarr/A/1/0/c/0/{i}"] = b"x"
    for i in range(25):
        objects[f"many/img{i:03d}.tif"] = b"1234"
    s3.put(bucket, objects)
    return bucket


def test_s3_listing(s3: Any, s3_bucket: str) -> None:
    loc = browse(f"s3://{s3_bucket}/proj/", **s3.storage_options)
    page = loc.list()
    assert rows(page.entries) == MIXED
    assert page.next_page is None
    assert page.location == f"s3://{s3_bucket}/proj"
    by_name = {e.name: e for e in page.entries}
    assert by_name["a.ome.tif"].path == f"s3://{s3_bucket}/proj/a.ome.tif"
    assert by_name["plate.ome.zarr"].path == f"s3://{s3_bucket}/proj/plate.ome.zarr"
    nested = browse(by_name["nested"].path, **s3.storage_options)
    assert rows(nested.list().entries) == [("deeper", "folder", None, None, None)]
    top = browse(f"s3://{s3_bucket}", **s3.storage_options).list()
    assert rows(top.entries) == [
        ("empty", "folder", None, None, None),
        ("many", "folder", None, None, None),
        ("proj", "folder", None, None, None),
        ("top.txt", "file", None, 3, None),
    ]
    buckets = browse("s3://", **s3.storage_options).list(page_size=10000)
    assert buckets.location == "s3://"
    assert (s3_bucket, f"s3://{s3_bucket}", "folder") in {
        (e.name, e.path, e.kind) for e in buckets.entries
    }
    empty = browse(f"s3://{s3_bucket}/empty/", **s3.storage_options).list()
    assert empty.entries == [] and empty.next_page is None
    hidden = browse(f"s3://{s3_bucket}/proj", show_hidden=True, **s3.storage_options).list()
    assert {".hidden", ".hiddendir"} <= {e.name for e in hidden.entries}


@pytest.mark.parametrize("page_size", [1, 2, 3, 4, 100])
def test_s3_paging_concatenates(s3: Any, s3_bucket: str, page_size: int) -> None:
    loc = browse(f"s3://{s3_bucket}/proj", **s3.storage_options)
    pages = all_pages(loc, page_size)
    flat = sum((rows(p) for p in pages), [])
    assert sorted(flat) == sorted(MIXED) and len(flat) == len(MIXED)
    assert all(len(p) == page_size for p in pages[:-1])
    assert len(pages) == math.ceil(len(MIXED) / page_size)


def test_s3_paging_uses_max_keys(s3: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    loc = browse(f"s3://{s3_bucket}/many/", **s3.storage_options)
    calls: list[dict[str, Any]] = []
    real = loc.fs._call_s3

    async def spy(method: str, *args: Any, **kwargs: Any) -> Any:
        calls.append({"method": method, **kwargs})
        return await real(method, *args, **kwargs)

    monkeypatch.setattr(loc.fs, "_call_s3", spy)
    pages = all_pages(loc, 10)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [e.name for p in pages for e in p] == [f"img{i:03d}.tif" for i in range(25)]
    listings = [c for c in calls if c["method"] == "list_objects_v2" and c.get("Prefix") == "many/"]
    paging = [c for c in listings if c["MaxKeys"] == 10]
    assert len(paging) == 3 and all(c["Delimiter"] == "/" for c in paging)
    assert "ContinuationToken" not in paging[0] and "ContinuationToken" in paging[1]
    assert all(c["MaxKeys"] <= 50 for c in listings)  # never an unbounded listing


def test_s3_errors(s3: Any, s3_bucket: str) -> None:
    opts = s3.storage_options
    with pytest.raises(SourceNotFound) as err:
        browse(f"s3://{s3_bucket}/nope/", **opts).list()
    assert str(err.value).startswith(f"s3://{s3_bucket}/nope: ")
    with pytest.raises(NotAFolder) as err2:
        browse(f"s3://{s3_bucket}/proj/notes.txt", **opts).list()
    assert "not a folder" in str(err2.value)
    with pytest.raises(SourceNotFound) as err3:
        browse(f"s3://{s3.new_bucket('missing')}/x", **opts).list()
    assert "no such bucket" in str(err3.value)
    with pytest.raises(InvalidPageToken):
        browse(f"s3://{s3_bucket}/proj", **opts).list(page="@@@")


def test_s3_bad_credentials_is_access_denied(s3: Any, s3_bucket: str) -> None:
    opts = {**s3.storage_options, "secret": "wrong-secret"}
    with pytest.raises(AccessDenied) as err:
        browse(f"s3://{s3_bucket}/proj/", **opts).list()
    assert "wrong-secret" not in str(err.value) and s3.secret not in str(err.value)
    opts = {**s3.storage_options, "key": "nobody"}
    with pytest.raises(AccessDenied):
        browse(f"s3://{s3_bucket}/proj/", **opts).list()


def test_s3_unreachable_endpoint_fails_fast() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    start = time.monotonic()
    with pytest.raises(StorageUnreachable) as err:
        browse("s3://bucket/", key="k", secret="s", endpoint_url=f"http://127.0.0.1:{port}").list()
    assert time.monotonic() - start < 10
    assert str(err.value).startswith("s3://bucket")
    assert "\n" not in str(err.value)


def test_s3_rooted(s3: Any, s3_bucket: str) -> None:
    opts = s3.storage_options
    loc = browse("proj", root=f"s3://{s3_bucket}", **opts)
    paths = {e.path for e in loc.list().entries}
    assert "proj/a.ome.tif" in paths and "proj/plate.ome.zarr" in paths
    assert loc.resolve("a.ome.tif") == f"{s3_bucket}/proj/a.ome.tif"
    assert loc.source("a.ome.tif") == f"s3://{s3_bucket}/proj/a.ome.tif"
    assert loc.parent is not None and loc.parent.parent is None
    for bad in ("..", "../other-bucket", "/proj", f"s3://{s3_bucket}-other/x"):
        with pytest.raises(PathEscapesRoot):
            loc.child(bad)
    assert (
        browse(f"s3://{s3_bucket}/proj/nested", root=f"s3://{s3_bucket}/proj", **opts).relpath
        == "nested"
    )


def test_shared_data_listing(shared_data: Path) -> None:
    page = browse(shared_data / "ome-tiff").list()
    assert page.entries and all(e.kind == "image" and e.format == "OME-TIFF" for e in page.entries)
    assert all(e.size == (shared_data / "ome-tiff" / e.name).stat().st_size for e in page.entries)
