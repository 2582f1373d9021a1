"""Gold and its trends recomputed from silver on a thread of their own, so a micro-batch does not wait for them
(GOLD_REFRESH=background; the default refreshes them at the end of each batch).

Gold (pipeline.IngestPipeline.refresh_gold) is recomputed from all of silver: its cost grows with silver (about
10 s at 350k products on two cores, issue #9), while the rest of a small batch does not. The streaming job asks
for a refresh when a batch is done (`request`); this thread runs one refresh for every request made since the
last one started, then waits `pause` seconds so the batches get the cores back. Each refresh ends by recording
the silver versions it was built from (the `pipeline_status` document `gold_refresh`): gold has caught up when
they are silver's newest. On 2 cores the thread takes the cores the batches need, and gold was less fresh than
with the in-batch refresh (README.md, "Freshness and scale"); with executors of their own it need not be.

A refresh that fails (MongoDB away, a Delta error) is logged with its cause and retried with a growing delay;
gold keeps its last refresh meanwhile, and `make check` shows it behind silver. The batches go on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("spark_jobs.gold_refresher")

FIRST_RETRY_SECONDS = 5.0
LONGEST_RETRY_SECONDS = 60.0


class GoldRefresher:
    """Runs `refresh` on its own thread when requested: at most one refresh at a time, and a pause of `pause`
    seconds after each. `finish` stops the thread and runs the refresh still owed, on the caller's thread."""

    def __init__(self, refresh: Callable[[], None], pause: float) -> None:
        self._refresh = refresh
        self._pause = pause
        self._requested = threading.Event()
        self._stopping = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="gold-refresher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """Silver changed: gold is refreshed after the refresh now running, if any."""
        self._requested.set()

    def finish(self) -> None:
        """Stops the thread (after the refresh it is running) and runs the refresh still owed, if any, here:
        so a job that stops after its last batch leaves gold built from its last silver. Raises what that
        refresh raises."""
        self._stopping.set()
        owed = self._requested.is_set()
        self._requested.set()  # wakes the thread
        if self._thread.is_alive():
            self._thread.join()
        if owed or self._failed:
            self._refresh()

    def _run(self) -> None:
        retry = FIRST_RETRY_SECONDS
        while True:
            self._requested.wait()
            if self._stopping.is_set():
                return
            self._requested.clear()
            try:
                self._refresh()
            except Exception:  # any failure is logged and retried: the batches must go on
                self._failed = True
                log.exception("gold refresh failed; gold keeps its last refresh, next try in %.0fs", retry)
                self._requested.set()
                self._stopping.wait(retry)
                retry = min(retry * 2, LONGEST_RETRY_SECONDS)
                continue
            self._failed = False
            retry = FIRST_RETRY_SECONDS
            self._stopping.wait(self._pause)
