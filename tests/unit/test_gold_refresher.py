"""The gold refresher's scheduling, with a recorded refresh in place of gold's: requests made while a refresh
runs are served by one more refresh, a failed refresh is retried, and `finish` runs what is still owed."""

from __future__ import annotations

import threading

import pytest

from spark_jobs import gold_refresher
from spark_jobs.gold_refresher import GoldRefresher
from stack.processes import wait_until


class RecordedRefresh:
    """A refresh that counts its runs, can be held until released, and can be told to fail."""

    def __init__(self) -> None:
        self.runs = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.failures_left = 0

    def __call__(self) -> None:
        self.started.set()
        self.release.wait()
        self.runs += 1
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("MongoDB is away")


def test_requests_made_during_a_refresh_are_served_by_one_more() -> None:
    refresh = RecordedRefresh()
    refresher = GoldRefresher(refresh, pause=0)
    refresher.start()
    refresh.release.clear()
    refresher.request()
    assert refresh.started.wait(10)
    for _ in range(5):
        refresher.request()
    refresh.release.set()
    assert wait_until(lambda: refresh.runs == 2, 10, interval=0.01)
    refresher.finish()
    assert refresh.runs == 2  # nothing was owed


def test_finish_runs_the_refresh_still_owed() -> None:
    refresh = RecordedRefresh()
    refresher = GoldRefresher(refresh, pause=3600)  # the thread rests after its first refresh
    refresher.start()
    refresher.request()
    assert wait_until(lambda: refresh.runs == 1, 10, interval=0.01)
    refresher.request()
    refresher.finish()
    assert refresh.runs == 2


def test_finish_without_a_request_refreshes_nothing() -> None:
    refresh = RecordedRefresh()
    refresher = GoldRefresher(refresh, pause=0)
    refresher.start()
    refresher.finish()
    assert refresh.runs == 0


def test_a_failed_refresh_is_logged_and_retried(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(gold_refresher, "FIRST_RETRY_SECONDS", 0.01)
    refresh = RecordedRefresh()
    refresh.failures_left = 2
    refresher = GoldRefresher(refresh, pause=0)
    refresher.start()
    refresher.request()
    assert wait_until(lambda: refresh.runs == 3, 10, interval=0.01)
    refresher.finish()
    assert refresh.runs == 3
    assert [r.levelname for r in caplog.records if "gold refresh failed" in r.message] == ["ERROR", "ERROR"]
    assert "MongoDB is away" in caplog.text


def test_finish_retries_a_refresh_that_failed_last() -> None:
    refresh = RecordedRefresh()
    refresh.failures_left = 1
    refresher = GoldRefresher(refresh, pause=0)  # the first retry waits FIRST_RETRY_SECONDS: finish comes first
    refresher.start()
    refresher.request()
    assert wait_until(lambda: refresh.runs == 1, 10, interval=0.01)
    refresher.finish()
    assert refresh.runs == 2
