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
        print(f"bioimnb: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("bioimnb: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
