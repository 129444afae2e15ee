"""bioimnb metadata completeness of a 10,000-file tree of OME-TIFFs (varied metadata, REMBI
sidecars in some folders), cold and on the scan's facts cache, against a loop that parses every
file's OME-XML with ome-types and checks the same fields.

Measures, for ``bioimnb.core.curation.completeness.completeness(url)``:
* cold: a fresh facts cache and the tree's pages evicted (``posix_fadvise(DONTNEED)``), so every
  image is opened for its headers;
* second run: the same call on the filled facts cache (nothing opened again; sidecars re-read);
* the peer: ``ome_types.from_tiff(f)`` then the same checks (pixel sizes, channel names,
  objective NA and magnification, acquisition date, microscope), on every ``--peer-every``-th
  file; what a notebook user would write today.  Reported as files/s.
The issue's targets: under 30 s cold, under 5 s the second time, for 10,000 files.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    base_parser,
    evict,
    median,
    print_machine,
    progress,
    ratio,
    table,
    timed,
)

NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


def _xml(i: int) -> str:
    """OME-XML of image ``i``: which fields are present varies with ``i`` (about half the
    images complete), so the assessment has real work to do."""
    parts = [f'<OME xmlns="{NS}">']
    has_instrument = i % 3 != 0
    if has_instrument:
        parts.append('<Instrument ID="Instrument:0"><Microscope Manufacturer="Zeiss" Model="LSM 980"/>')
        na = ' LensNA="1.4"' if i % 5 else ""
        parts.append(f'<Objective ID="Objective:0" Manufacturer="Zeiss" NominalMagnification="63"{na}/></Instrument>')
    parts.append(f'<Image ID="Image:0" Name="img{i}">')
    if i % 7:
        parts.append("<AcquisitionDate>2024-05-06T10:11:12</AcquisitionDate>")
    if has_instrument:
        parts.append('<InstrumentRef ID="Instrument:0"/>')
    size = ' PhysicalSizeX="0.2" PhysicalSizeY="0.2"' if i % 11 else ""
    parts.append(f'<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="32" SizeY="32" SizeZ="1" SizeC="2" SizeT="1"{size}>')
    names = ('Name="DAPI"', 'Name="GFP"') if i % 4 else ("", "")
    for c in range(2):
        parts.append(f'<Channel ID="Channel:0:{c}" SamplesPerPixel="1" {names[c]}/>')
    parts.append('<TiffData IFD="0" PlaneCount="2"/></Pixels></Image></OME>')
    return "".join(parts)


def make_tree(root: Path, n: int) -> int:
    """``n`` OME-TIFFs in folders of 100, a REMBI sidecar at the top and in every 10th folder."""
    marker = root / ".complete.json"
    if marker.exists() and json.loads(marker.read_text()).get("n") == n:
        return n
    import numpy as np
    import tifffile

    from bioimnb.core.curation import rembi

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    data = np.random.default_rng(0).integers(0, 255, (2, 32, 32), dtype=np.uint8)
    for i in range(n):
        folder = root / f"run{i // 100:03d}"
        if i % 100 == 0:
            folder.mkdir()
            if (i // 100) % 10 == 0:
                rembi.save(folder, {"specimen": {"sample_preparation_protocol": f"protocol {i // 100}"}})
        tifffile.imwrite(folder / f"img{i:05d}.ome.tif", data, description=_xml(i).encode(), metadata=None, photometric="minisblack")
    rembi.save(root, {"study": {"title": "Benchmark study", "licence": "CC0"}})
    marker.write_text(json.dumps({"n": n}))
    return n


def peer_loop(paths: list[str]) -> tuple[float, int]:
    """(seconds, complete images) for ome-types parsing and checking each file."""
    from ome_types import from_tiff

    def check(path: str) -> bool:
        ome = from_tiff(path)
        image = ome.images[0]
        px = image.pixels
        ok = px.physical_size_x is not None and px.physical_size_y is not None
        ok &= all(ch.name for ch in px.channels)
        objective = ome.instruments[0].objectives[0] if ome.instruments and ome.instruments[0].objectives else None
        ok &= objective is not None and objective.lens_na is not None and objective.nominal_magnification is not None
        ok &= image.acquisition_date is not None
        ok &= bool(ome.instruments and ome.instruments[0].microscope)
        return bool(ok)

    complete = 0

    def go() -> None:
        nonlocal complete
        complete = sum(check(p) for p in paths)

    dt, _ = timed(go)
    return dt, complete


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="OME-TIFFs in the tree")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-every", type=int, default=13, help="the peer parses every N-th file")
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.repeats, args.peer_every = 200, 1, 13
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print_machine(work)

    import ome_types  # noqa: F401 - imports outside the clock, for both tools

    import bioimnb.core.curation.completeness as comp
    import bioimnb.core.facts
    import bioimnb.core.readers.tiff  # noqa: F401

    root = work / f"completeness_tree_{args.files}"
    dt_make, n = timed(lambda: make_tree(root, args.files))
    files = sorted(str(p) for p in root.rglob("*.ome.tif"))
    progress(f"tree: {n} OME-TIFFs ({dt_make:.1f} s to make or reuse)")
    bioimnb.core.facts.image_facts(files[0])  # warm-up outside the clock

    cold: list[float] = []
    second: list[float] = []
    summary: dict[str, Any] = {}
    image_fields = set(comp.minimum_fields(False))
    image_complete: dict[str, bool] = {}

    def record(facts: Any, result: dict[str, Any]) -> None:
        image_complete[facts.path] = not (set(result["missing"]) & image_fields)

    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) / "facts.sqlite"
            evict([root])
            dt, summary = timed(lambda: comp.completeness(str(root), cache=cache))  # noqa: B023
            cold.append(dt)
            dt, again = timed(lambda: comp.completeness(str(root), cache=cache, per_image=record))  # noqa: B023
            second.append(dt)
            assert again == summary
    progress(f"bioimnb: cold {median(cold):.2f} s, second {median(second):.2f} s; score {summary['score']}")

    sample = files[:: args.peer_every]
    peer_loop(sample[:2])  # warm-up
    evict([root])
    peer_cold, peer_complete = peer_loop(sample)
    peer_warm, _ = peer_loop(sample)
    ours = sum(image_complete[p] for p in sample)
    if ours != peer_complete:
        raise SystemExit(f"bioimnb and the ome-types loop disagree: {ours} vs {peer_complete} complete images in the sample")
    progress(f"peer (ome-types on {len(sample)} files): cold {peer_cold:.2f} s, warm {peer_warm:.2f} s")

    rows = [
        ["bioimnb completeness, cold (fresh facts cache, page cache evicted)", f"{median(cold):.2f}", f"{n / median(cold):,.0f}"],
        ["bioimnb completeness, second run (facts cache)", f"{median(second):.2f}", f"{n / median(second):,.0f}"],
        [f"ome-types loop, cold ({len(sample)} files)", f"{peer_cold:.2f}", f"{len(sample) / peer_cold:,.0f}"],
        [f"ome-types loop, warm ({len(sample)} files)", f"{peer_warm:.2f}", f"{len(sample) / peer_warm:,.0f}"],
    ]
    table(
        ["run", "s (median)", "files/s"],
        rows,
        f"{n} OME-TIFFs; score {summary['score']:.3f}, complete {summary['complete']}, "
        f"with a REMBI study {summary['with_study']}; image fields complete in the peer's sample: "
        f"{peer_complete} of {len(sample)} (both tools agree); targets: cold < 30 s, second < 5 s",
    )
    table(
        ["comparison", "ratio"],
        [
            ["cold, files/s vs ome-types loop cold", ratio(n / median(cold), len(sample) / peer_cold)],
            ["second run, files/s vs ome-types loop warm", ratio(n / median(second), len(sample) / peer_warm)],
            ["second run vs cold (the facts cache)", ratio(median(cold), median(second))],
        ],
        "Ratios of medians (higher: bioimnb faster)",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
