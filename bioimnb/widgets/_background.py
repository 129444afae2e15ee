"""What the panels that run a job on a background thread share: waiting for it, and whether
it has ended (the conversion and transfer panels)."""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class BackgroundJob(Generic[R]):
    """Mixin: ``start()`` runs the job on ``_thread``; it sets ``report`` or ``error``."""

    _job_name = "job"
    _thread: threading.Thread | None
    report: R | None
    error: BaseException | None

    def start(self) -> Any:  # pragma: no cover - each panel defines it
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> R:
        """Block until done; returns the report or raises the job's error."""
        if self._thread is None:
            self.start()
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{self._job_name} still running")
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()
