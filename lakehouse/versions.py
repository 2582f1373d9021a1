"""A record's version `_v`, the one order every layer keeps per key (silver's MERGE, MongoDB's guard).

`<ms:13>.<offset:19>.<partition:10>`: the broker's log-append time in epoch milliseconds, then the record's
offset, then its partition, zero-padded so that comparing the texts compares those parts in that order. The
Spark job builds it with `F.format_string(VERSION_FORMAT, ...)` (spark_jobs/transforms.record_version), the
speed layer with `version_text`: one format, two engines.
"""

from __future__ import annotations

VERSION_FORMAT = "%013d.%019d.%010d"
# Versions hold the time as 13 digits of milliseconds (until 2286); Kafka's "no timestamp" is -1.
MAX_VERSION_MILLIS = 10**13 - 1


def version_text(millis: int, offset: int, partition: int) -> str:
    """The version of the record appended at `millis` (broker time, epoch ms) at `offset` of `partition`.
    Raises ValueError for a time a version cannot hold (below 0 or from the year 2286)."""
    if not 0 <= millis <= MAX_VERSION_MILLIS:
        raise ValueError(f"broker time {millis} ms is not a time from 1970 to 2286")
    return VERSION_FORMAT % (millis, offset, partition)
