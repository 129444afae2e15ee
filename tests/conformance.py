"""Conformance tests that every reader and every lister passes, in the style of zarr-python's
``StoreTests``: subclass, provide one fixture, inherit the tests.

Adding a format is one registry entry plus one ``ReaderTests`` subclass (see
tests/core/test_conformance.py); adding a storage family is one lister plus one ``ListingTests``
subclass.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bioimnb
from bioimnb.core.classify import classify
from bioimnb.core.errors import SourceNotFound
from bioimnb.core.locations import Entry, InvalidPageToken, Location, NotAFolder


class ReaderTests:
    """Every reader: scenes, levels that shrink, dask arrays equal to region reads, an OME model,
    plausible physical sizes, ``files``, a classification that agrees, close twice, no open file
    handle left behind.

    Subclasses provide a fixture ``case`` returning a dict with ``source`` (path or URL),
    ``options`` (storage options, may be empty), ``format`` (expected format name), ``scenes``
    (expected count), and optionally ``level0`` (a TCZYX(S) array of scene 0 to compare pixels
    with) and ``physical_x`` (expected X size in µm, or None when the file states none).
    """

    @pytest.fixture
    def case(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def open(self, case: dict[str, Any], **kw: Any) -> bioimnb.MultiscaleImage:
        return bioimnb.open_image(case["source"], **kw, **case.get("options", {}))

    def test_format_and_scenes(self, case: dict[str, Any]) -> None:
        with self.open(case) as img:
            assert img.format == case["format"]
            assert len(img.scenes) == case["scenes"]
            for i in range(len(img.scenes)):
                scene = img.select_scene(i)
                assert scene.scene_index == i
                assert scene.axes in ("TCZYX", "TCZYXS")
                assert len(scene.shape) == len(scene.axes)

    def test_levels_shrink(self, case: dict[str, Any]) -> None:
        with self.open(case) as img:
            shapes = img.level_shapes
            assert shapes[0] == img.shape
            for a, b in zip(shapes, shapes[1:]):
                assert b[3] <= a[3] and b[4] <= a[4] and (b[3], b[4]) != (a[3], a[4])
                assert b[:3] == a[:3]

    def test_dask_equals_region_reads(self, case: dict[str, Any]) -> None:
        with self.open(case) as img:
            coarsest = len(img.levels) - 1
            whole = np.asarray(img.levels[coarsest].compute())
            np.testing.assert_array_equal(whole, img.read(coarsest))
            ny, nx = img.shape[3], img.shape[4]
            y0, x0 = ny // 3, nx // 4
            region = img.read(0, t=0, z=0, y=slice(y0, min(ny, y0 + 37)), x=slice(x0, min(nx, x0 + 53)))
            expected = np.asarray(img.levels[0][0, :, 0, y0 : y0 + 37, x0 : x0 + 53].compute())
            np.testing.assert_array_equal(region, expected)
            if "level0" in case:
                np.testing.assert_array_equal(np.asarray(img.levels[0].compute()), case["level0"])

    def test_ome_builds(self, case: dict[str, Any]) -> None:
        with self.open(case) as img:
            ome = img.ome
            assert len(ome.images) >= 1
            pixels = ome.images[min(img.scene_index, len(ome.images) - 1)].pixels
            assert (pixels.size_x, pixels.size_y) == (img.shape[4], img.shape[3])

    def test_physical_sizes(self, case: dict[str, Any]) -> None:
        with self.open(case) as img:
            px = img.physical_size
            for value in (px.X, px.Y, px.Z):
                assert value is None or (isinstance(value, float) and value > 0)
            if "physical_x" in case:
                expected = case["physical_x"]
                assert (None if expected is None else pytest.approx(expected)) == px.X

    def test_files_and_classification_agree(self, case: dict[str, Any]) -> None:
        with self.open(case) as img:
            files = img.files
            assert files and all(isinstance(f, str) for f in files)
            found = classify(case["source"], **case.get("options", {}))
            assert found.kind == "image" and found.error is None
            assert found.reader is not None

    def test_close_twice_and_no_handle_left_open(self, case: dict[str, Any]) -> None:
        psutil = pytest.importorskip("psutil")
        proc = psutil.Process()
        source = str(case["source"])
        local = "://" not in source

        def handles() -> set[str]:
            return {f.path for f in proc.open_files()} if local else set()

        before = handles()
        img = self.open(case)
        img.read(len(img.levels) - 1)
        img.close()
        img.close()
        del img
        gc.collect()
        leaked = {p for p in handles() - before if p.startswith(str(Path(source).parent))}
        assert not leaked, leaked


class ListingTests:
    """Every lister: pages that concatenate to the sorted whole, images as one entry (by
    content), plain files and folders, errors for missing folders, files and bad page tokens.

    Subclasses provide a fixture ``make`` returning a function ``make(files) -> (url, options)``
    that writes ``files`` (``{relative path: bytes}``) to a fresh folder or prefix of its
    storage and returns where it is.
    """

    OME_V3 = (
        b'{"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5", '
        b'"multiscales": [{"datasets": [{"path": "0"}]}]}}}'
    )

    @pytest.fixture
    def make(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def tree(self) -> dict[str, bytes]:
        files = {f"f{i:02d}.txt": b"x" * i for i in range(1, 13)}
        files["img.ome.zarr/zarr.json"] = self.OME_V3
        files["img.ome.zarr/0/c/0/0"] = b"chunk"
        files["plain.zarr/readme.txt"] = b"no metadata"  # a name is not metadata
        files["text.tif"] = b"just text"
        files["sub/deeper.czi"] = b"ZISRAWFILE" + b"\0" * 100
        return files

    def rows(self, entries: list[Entry]) -> list[tuple[Any, ...]]:
        return [(e.name, e.kind, e.format) for e in entries]

    def location(self, make: Any) -> Location:
        url, options = make(self.tree())
        return bioimnb.browse(url, **options)

    def test_entries_are_classified_by_content(self, make: Any) -> None:
        entries = {e.name: e for e in self.location(make).list(page_size=100).entries}
        assert (entries["img.ome.zarr"].kind, entries["img.ome.zarr"].format) == ("image", "OME-Zarr")
        assert entries["img.ome.zarr"].size is None  # chunks are never walked
        assert entries["plain.zarr"].kind == "folder"
        assert entries["text.tif"].kind == "image" and "text" in (entries["text.tif"].error or "")
        assert (entries["sub"].kind, entries["f03.txt"].kind, entries["f03.txt"].size) == ("folder", "file", 3)

    @pytest.mark.parametrize("page_size", [1, 4, 7, 100])
    def test_pages_concatenate_to_the_sorted_whole(self, make: Any, page_size: int) -> None:
        loc = self.location(make)
        whole = loc.list(page_size=100).entries
        names = [e.name for e in whole]
        assert names == sorted(names) and len(names) == 16
        got: list[Entry] = []
        token = None
        for _ in range(100):
            page = loc.list(page_size=page_size, page=token)
            assert len(page.entries) <= page_size
            got += page.entries
            token = page.next_page
            if token is None:
                break
        assert self.rows(got) == self.rows(whole)

    def test_child_lists_a_subfolder(self, make: Any) -> None:
        loc = self.location(make)
        sub = loc.child("sub").list().entries
        assert self.rows(sub) == [("deeper.czi", "image", "CZI")]

    def test_errors(self, make: Any) -> None:
        loc = self.location(make)
        with pytest.raises(SourceNotFound):
            loc.child("no-such-folder").list()
        with pytest.raises(NotAFolder):
            loc.child("f01.txt").list()
        with pytest.raises(InvalidPageToken):
            loc.list(page="not-a-token!")


def local_make(base: Path) -> Any:
    counter = iter(range(10**6))

    def make(files: dict[str, bytes]) -> tuple[str, dict[str, Any]]:
        root = base / f"tree{next(counter)}"
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return str(root), {}

    return make


__all__ = ["ListingTests", "ReaderTests", "local_make"]
