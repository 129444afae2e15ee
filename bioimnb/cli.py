"""The ``bioimnb`` command line.

Every subcommand is a thin layer over the public API.  User errors (missing or unreadable
input, an unreachable endpoint, ...) print one line ``bioimnb: error: <source>: <reason>`` on
stderr and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

EXIT_USER_ERROR = 2


def _storage_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if getattr(args, "endpoint_url", None):
        opts["endpoint_url"] = args.endpoint_url
    if getattr(args, "anon", False):
        opts["anon"] = True
    for item in getattr(args, "storage_option", None) or []:
        key, _, value = item.partition("=")
        parsed: Any = value
        if value.lower() in ("true", "false"):
            parsed = value.lower() == "true"
        opts[key] = parsed
    return opts


def _add_storage_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("storage")
    group.add_argument("--endpoint-url", help="S3-compatible endpoint (default: AWS or AWS_ENDPOINT_URL)")
    group.add_argument("--anon", action="store_true", help="anonymous access to public buckets")
    group.add_argument(
        "--storage-option",
        action="append",
        metavar="KEY=VALUE",
        help="extra fsspec storage option (repeatable); credentials are best left to the environment",
    )


def _cmd_info(args: argparse.Namespace) -> int:
    from .core.images import open_image

    with open_image(args.source, **_storage_options(args)) as img:
        info = img.describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['source']}  [{info['format']}, read by {info['reader']}]")
    if info.get("incomplete"):
        print("  INCOMPLETE: an interrupted conversion wrote this; finish it with `bioimnb convert SRC DST --resume`")
    for scene in info["scenes"]:
        px = scene["physical_size_um"]
        size = " x ".join("?" if px[a] is None else f"{px[a]:g}" for a in ("X", "Y", "Z"))
        print(f"  scene {scene['index']}: {scene['name']}")
        print(f"    axes {scene['axes']}  shape {tuple(scene['shape'])}  dtype {scene['dtype']}")
        pyramid = "virtual pyramid" if scene.get("virtual_pyramid") else "levels"
        print(f"    {pyramid}: " + ", ".join("x".join(map(str, lv[-2:] if not scene['axes'].endswith('S') else lv[-3:-1])) for lv in scene["levels"]))
        print(f"    pixel size (X x Y x Z, um): {size}")
        print(f"    channels: {', '.join(scene['channels'])}")
        if scene.get("labels"):
            print(f"    labels: {', '.join(scene['labels'])}")
    return 0


def _cmd_ls(args: argparse.Namespace) -> int:
    from .core.locations import browse

    loc = browse(args.url, **_storage_options(args))
    page = loc.list(page_size=args.page_size, page=args.page)
    data = page.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for entry in data["entries"]:
        size = "" if entry["size"] is None else _human(entry["size"])
        kind = entry["format"] or entry["kind"]
        files = f" ({entry['files']} files)" if entry.get("files") and entry["files"] > 1 else ""
        name = entry["name"] + ("/" if entry["kind"] == "folder" else "")
        print(f"{kind:>12}  {size:>9}  {name}{files}")
    if data["next_page"]:
        print(f"... more: --page {data['next_page']}")
    return 0


def _scenes(text: str | None) -> list[int | str] | None:
    if not text:
        return None
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if part:
            out.append(int(part) if part.lstrip("-").isdigit() else part)
    return out


class _ProgressLine:
    """One updating line on a terminal; sparse plain lines when stderr is not a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = -1.0

    def __call__(self, p: Any) -> None:
        pct = 100.0 * p.fraction
        if not self.tty and pct - self.last < 10 and p.done < p.total:
            return
        self.last = pct
        eta = "" if p.eta is None else f", ETA {p.eta:.0f} s"
        line = f"{p.phase}: {p.done}/{p.total} blocks ({pct:.0f}%){eta}"
        if self.tty:
            print("\r" + line.ljust(70), end="", file=sys.stderr, flush=True)
            if p.done >= p.total:
                print(file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)


def _cmd_convert(args: argparse.Namespace) -> int:
    from .core.convert import convert

    report = convert(
        args.source,
        args.dest,
        to=args.to,
        ngff=args.ngff,
        scenes=_scenes(args.scenes),
        chunks=args.chunks,
        shards=args.shards,
        compression=args.compression,
        compression_level=args.compression_level,
        downsample=args.downsample,
        levels=args.levels,
        downsample_z=args.downsample_z,
        overwrite=args.overwrite,
        resume=args.resume,
        verify=not args.no_verify,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=None if args.quiet else _ProgressLine(),
        **_storage_options(args),
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .core.demo import make_demo_data

    for path in make_demo_data(args.folder, small=args.small):
        print(path)
    return 0


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _page_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10000:
        raise argparse.ArgumentTypeError("must be between 1 and 10000")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="bioimnb", description="Bioimage data management: inspect, list, convert, plan."
    )
    parser.add_argument("--version", action="version", version=f"bioimnb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="describe an image: scenes, axes, shape, levels, pixel sizes")
    info.add_argument("source", help="local path or URL (s3://, https://, ...)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    _add_storage_flags(info)
    info.set_defaults(func=_cmd_info)

    ls = sub.add_parser("ls", help="list a folder, bucket or prefix; images count as one entry")
    ls.add_argument("url", nargs="?", default=".", help="folder, s3://bucket/prefix/ or http(s) URL")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--page-size", type=_page_size, default=100, metavar="N")
    ls.add_argument("--page", default=None, metavar="TOKEN", help="token printed as next_page")
    _add_storage_flags(ls)
    ls.set_defaults(func=_cmd_ls)

    conv = sub.add_parser("convert", help="convert to OME-Zarr (NGFF 0.4/0.5) or pyramidal OME-TIFF, verified")
    conv.add_argument("source", help="any image bioimnb reads (path or URL)")
    conv.add_argument("dest", help="output path or URL (e.g. out.ome.zarr, s3://bucket/out.ome.zarr, out.ome.tif)")
    conv.add_argument("--to", choices=["ome-zarr", "ome-tiff"], default=None, help="output format (default: from DEST's extension, else ome-zarr)")
    conv.add_argument("--ngff", choices=["0.4", "0.5"], default="0.5", help="NGFF version (0.5: zarr v3 + sharding; 0.4: zarr v2)")
    conv.add_argument("--scenes", help="comma-separated scene indices or names (default: all)")
    conv.add_argument("--chunks", type=int, default=512, metavar="N", help="chunk (tile) edge in Y and X")
    conv.add_argument("--shards", type=int, default=None, metavar="N", help="shard edge in Y and X (NGFF 0.5; default 8 chunks)")
    conv.add_argument("--compression", choices=["zstd", "blosc-lz4", "zlib", "none"], default=None)
    conv.add_argument("--compression-level", type=int, default=None, metavar="L")
    conv.add_argument("--downsample", choices=["mean", "mode", "nearest"], default="mean", help="mean for intensities, mode/nearest for labels")
    conv.add_argument("--downsample-z", action="store_true", help="also halve Z at each level")
    conv.add_argument("--levels", type=int, default=None, metavar="N", help="pyramid levels (default: until a level fits 256 px)")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing destination")
    conv.add_argument("--resume", action="store_true", help="finish an interrupted conversion, keeping written blocks")
    conv.add_argument("--no-verify", action="store_true", help="skip the level-0 checksum comparison and validation")
    conv.add_argument("--scheduler", default=None, metavar="ADDRESS", help="dask.distributed scheduler address (default: local threads)")
    conv.add_argument("--workers", type=int, default=None, metavar="N", help="local worker threads (default: CPU count)")
    conv.add_argument("--json", action="store_true", help="print the report as JSON")
    conv.add_argument("--quiet", action="store_true", help="no progress output")
    _add_storage_flags(conv)
    conv.set_defaults(func=_cmd_convert)

    demo = sub.add_parser("demo", help="write synthetic demo images (no download) into a folder")
    demo.add_argument("folder", nargs="?", default="notebooks/data")
    demo.add_argument("--small", action="store_true", help="1k instead of 4k images")
    demo.set_defaults(func=_cmd_demo)
    return parser


def _quiet_libraries() -> None:
    # Readers chatter through logging and warnings; the CLI reports errors itself.
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.CRITICAL)
    for name in ("tifffile", "bioio", "bioio_base", "s3fs", "aiobotocore", "botocore", "fsspec"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    func: Callable[[argparse.Namespace], int] = args.func
    from .core.errors import BioimnbError

    try:
        return func(args)
    except BioimnbError as exc:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        print(f"bioimnb: error: {exc}", file=sys.stderr)
        from .core.convert import ConversionCancelled

        return 130 if isinstance(exc, ConversionCancelled) else EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("bioimnb: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
