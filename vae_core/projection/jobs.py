"""`ProjectionJob`: a projection too large to wait for, computed in a daemon thread with its progress,
one at a time, into the disk cache."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np

from vae_core.errors import VAEError
from vae_core.projection.maps import Projection, _prepared, cached_projection, project, sampled_projection
from vae_core.projection.methods import PROJECTION_METHODS, SAMPLE_SIZE

# ---- background jobs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a ProjectionJob. step: what it is doing, in words; progress: 0..1 over its
    steps; quick: the sampled view once computed; result: the full projection once computed (also
    on disk); error: a one-line message when it failed; cancelled: stopped before the end."""

    step: str
    progress: float
    step_number: int = 0  # 1-based; 0 before the first step
    steps: int = 1
    quick: Projection | None = None
    result: Projection | None = None
    error: str | None = None
    cancelled: bool = False

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None or self.cancelled


class _Cancelled(Exception):
    pass


_one_job_at_a_time = threading.Lock()


class ProjectionJob:
    """`project(codes, method, **options)` computed in a daemon thread, for a map too large to wait
    for. When there are more than `sample_size` codes of a background method (UMAP, t-SNE), a quick view
    (`sampled_projection`) comes first; then the full projection, which lands in the disk cache
    (options cache_dir and cache_key). `start()` reads that cache at once, so a projection computed
    before needs no thread. Jobs run one at a time; `status()` is safe from any thread; `cancel()`
    stops a job at its next UMAP epoch or step."""

    def __init__(self, codes: np.ndarray, method: str, *, sample_size: int = SAMPLE_SIZE, **options):
        self.codes, _, _ = _prepared(codes, method, **options)  # bad input fails here, not in the thread
        self.method, self.options, self.spec = method, options, PROJECTION_METHODS[method]
        self.sampled = self.spec.background and len(self.codes) > sample_size
        self.sample_size, self.steps = sample_size, 2 if self.sampled else 1
        self._status = JobStatus("waiting to start", 0.0, steps=self.steps)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ProjectionJob:
        if self._thread is not None or self.status().done:
            return self
        hit = cached_projection(self.codes, self.method, **self.options) if "cache_dir" in self.options else None
        if hit is not None:
            self._set(step="read from the disk cache", progress=1.0, result=hit)
        else:
            self._thread = threading.Thread(target=self._run, name=f"projection-{self.method}", daemon=True)
            self._thread.start()
        return self

    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> JobStatus:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status()

    def _set(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def _run(self) -> None:
        try:
            self._set(step="waiting for another projection to finish")
            while not _one_job_at_a_time.acquire(timeout=0.5):
                self._check_cancel()
            try:
                self._steps()
            finally:
                _one_job_at_a_time.release()
        except _Cancelled:
            self._set(step="cancelled", cancelled=True)
        except VAEError as e:
            self._set(step="failed", error=str(e))
        except Exception as e:  # noqa: BLE001 - a thread's failure must reach the page as a message
            self._set(step="failed", error=f"{self.method} failed: {type(e).__name__}: {e}")

    def _steps(self) -> None:
        if self.sampled:
            self._begin(1, f"{self.method} of a seeded sample of {self.sample_size:,} codes, the rest placed by "
                           f"{self.spec.placement}")
            params = {k: v for k, v in self.options.items() if k not in ("cache_dir", "cache_key")}
            self._set(quick=sampled_projection(self.codes, self.method, sample_size=self.sample_size, **params))
        full = f"{self.method} of all {len(self.codes):,} codes"
        self._begin(self.steps, full + (f": {self.spec.preparing}" if self.spec.preparing else ""))

        def epochs(done: int, total: int) -> None:
            self._check_cancel()
            self._set(step=f"{full}: optimising the layout, epoch {done} of {total}",
                      progress=(self.steps - 1 + done / max(total, 1)) / self.steps)

        result = project(self.codes, self.method, **self.options, progress=epochs)
        self._set(step="done", progress=1.0, result=result)

    def _begin(self, number: int, step: str) -> None:
        self._check_cancel()
        self._set(step=step, step_number=number, progress=(number - 1) / self.steps)

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise _Cancelled
