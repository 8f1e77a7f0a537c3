"""The bridge's token bucket and backoff, on a fake clock."""

import logging

from ledd.mqtt.bridge import Backoff, RateLimit


def test_token_bucket_allows_the_burst_then_the_rate(caplog):
    now = [100.0]
    limit = RateLimit(rate=10, burst=20, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="ledd-mqtt"):
        assert sum(limit.allow() for _ in range(50)) == 20  # the burst, then nothing
        now[0] += 1.0
        assert sum(limit.allow() for _ in range(50)) == 10  # one second later: the rate
        now[0] += 10.0
        assert sum(limit.allow() for _ in range(50)) == 20  # the bucket holds at most the burst
    assert limit.dropped == 30 + 40 + 30
    # One log line per few seconds, not one per dropped command.
    lines = [r.getMessage() for r in caplog.records if "rate limit" in r.getMessage()]
    assert 1 <= len(lines) <= 3 and "dropped" in lines[0]


def test_backoff_doubles_to_the_cap_and_resets():
    b = Backoff(1.0, 8.0)
    assert [b.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    b.reset()
    assert b.next() == 1.0
