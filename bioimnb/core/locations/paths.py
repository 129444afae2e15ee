"""Root confinement: the security boundary of every rooted location.

Relative paths may not be absolute, hold ``..`` or NUL; an absolute path or URL maps into the
root only when it lies below it; a local path whose links resolve outside the root is refused.
Every :class:`~bioimnb.core.locations.Location` method that reaches a path under a root goes
through :meth:`Confined._confined` or :meth:`Confined._rel_from_absolute`.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import PathEscapesRoot
from ..storage import resolve
from .base import LocationBase, _backend


def _split_rel(text: str, local: bool) -> list[str]:
    """Components of a relative path ("" and "." dropped); ``..`` and absolute paths refused
    by the caller."""
    if local and os.sep != "/":
        text = text.replace(os.sep, "/")
    return [part for part in text.split("/") if part not in ("", ".")]


def _is_absolute(text: str) -> bool:
    return "://" in text or os.path.isabs(text) or text.startswith(("/", "\\"))


def _posix_rel(path: str, start: str) -> str:
    rel = os.path.relpath(path, start)
    return "" if rel == os.curdir else rel.replace(os.sep, "/")


def _http_dir_url(url: str) -> str:
    """An HTTP URL without query, fragment or trailing slash (``http://host`` for the top)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class Confined(LocationBase):
    """Root confinement of a location (mixed into :class:`~bioimnb.core.locations.Location`)."""

    @staticmethod
    def _escape(requested: str, why: str) -> PathEscapesRoot:
        """The refusal, naming the requested path (never the root itself)."""
        return PathEscapesRoot(requested or ".", f"path escapes the root ({why})")

    def _inside_root(self, fs_path: str) -> bool:
        """For a local root: does ``fs_path`` resolve (symlinks followed) inside the root?"""
        if self._root_real is None:
            return True
        real = os.path.realpath(fs_path)
        return real == self._root_real or real.startswith(self._root_real.rstrip(os.sep) + os.sep)

    def _confined(self, relpath: str | os.PathLike[str]) -> tuple[str, str]:
        """``(new rel, fs path)`` for ``relpath`` taken relative to this location under its root."""
        text = os.fspath(relpath)
        if "\x00" in text:
            raise self._escape(repr(text), "NUL character in path")
        if _is_absolute(text):
            raise self._escape(text, "absolute paths are not allowed under a root")
        parts = _split_rel(text, self._backend == "local")
        if ".." in parts:
            raise self._escape(text, "'..' is not allowed under a root")
        assert self._root is not None
        # Relative paths hold names as listed (URL-decoded for HTTP); _join quotes them.
        new_parts = [*(self._rel.split("/") if self._rel else []), *parts]
        new_rel = "/".join(new_parts)
        fs_path = self._join(self._root, new_parts)
        if not self._inside_root(fs_path):
            raise self._escape(new_rel, "a symlink leads outside the root")
        return new_rel, fs_path

    def _rel_from_absolute(self, text: str) -> str:
        """The root-relative form of an absolute path or URL inside the root (else refused)."""
        assert self._root is not None
        if self._backend == "local":
            if "://" in text and not text.startswith("file://"):
                raise self._escape(text, "not under the root")
            path = os.path.abspath(os.path.expanduser(text.removeprefix("file://")))
            root = self._root.rstrip(os.sep) or os.sep
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return _posix_rel(path, root)
            assert self._root_real is not None
            real = os.path.realpath(path)
            if real == self._root_real or real.startswith(self._root_real.rstrip(os.sep) + os.sep):
                return _posix_rel(real, self._root_real)
            raise self._escape(text, "not under the root")
        other = resolve(text, **self.storage_options)
        if _backend(other.fs) != self._backend:
            raise self._escape(text, "not under the root")
        path = _http_dir_url(other.path) if self._backend == "http" else other.path.rstrip("/")
        if path == self._root:
            return ""
        base = self._root.rstrip("/") + "/"
        if path.startswith(base):
            rel = path[len(base) :]
            return "/".join(unquote(p) for p in rel.split("/")) if self._backend == "http" else rel
        raise self._escape(text, "not under the root")
