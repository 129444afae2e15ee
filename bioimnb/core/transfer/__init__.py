"""Transfer with checksums, manifests, BagIt bags and fixity checks.

* :func:`transfer` copies a file, an image or a folder between local disks and S3 stores (HTTP
  as a source) with a SHA-256 per file, verified at the destination, resumable, never
  overwriting silently; ``bag=True`` makes the destination a BagIt 1.0 bag.
* :func:`manifest` writes ``manifest-sha256.txt`` and ``bioimnb-manifest.json`` into a folder.
* :func:`fixity` re-checks a folder against its manifest, or a bag.
* :func:`watch` polls an acquisition folder and transfers files once they stop growing.
"""

from __future__ import annotations

from .copy import Failure, TransferCancelled, TransferError, TransferReport, transfer
from .fixity import FixityError, FixityReport, fixity
from .manifest import ManifestReport, manifest
from .watch import watch

__all__ = [
    "Failure",
    "FixityError",
    "FixityReport",
    "ManifestReport",
    "TransferCancelled",
    "TransferError",
    "TransferReport",
    "fixity",
    "manifest",
    "transfer",
    "watch",
]
