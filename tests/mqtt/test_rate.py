"""The bridge's token bucket and backoff, on a fake clock."""

import logging

from ledd.mqtt.bridge import Backoff, Burst, RateLimit


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
    assert 1 <= len(lines) <= 3 and "dropping commands" in lines[0]


def test_a_flood_logs_its_first_drop_then_true_counts_then_the_final_count(caplog):
    """Before: 'dropped 1 command(s) so far' after hundreds, and no count once the flood ended."""
    now = [100.0]
    limit = RateLimit(rate=20, burst=40, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="ledd-mqtt"):
        for _ in range(300):           # 40 pass, 260 dropped, all within 1 ms
            limit.allow()
        now[0] += 3.0
        for _ in range(100):           # 40 more pass (the bucket holds the burst at most), 60 dropped
            limit.allow()
        now[0] += 2.0                  # the interval is over: the bridge's loop ticks
        limit.drops.tick()
        now[0] += 5.0                  # an interval with no drop: the flood is over
        limit.drops.tick()
        assert limit.drops.deadline() is None
        now[0] += 60.0
        limit.drops.tick()             # nothing more to say
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "rate limit: more than 20 commands/s (burst 40): dropping commands; the count follows",
        "rate limit: dropped commands: 319 more in the last 5 s (320 so far)",
        "rate limit: dropped commands: over, 320 in all",
    ]
    assert limit.dropped == 320


def test_a_second_flood_starts_its_own_count(caplog):
    now = [0.0]
    burst = Burst("invalid commands ignored", interval=5.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="ledd-mqtt"):
        burst.hit("bad %s", "one")
        now[0] = 6.0
        burst.tick()                   # nothing new since the first line: over
        burst.hit("bad %s", "two")
        burst.hit("bad %s", "three")
        now[0] = 11.0
        burst.tick()
    assert [r.getMessage() for r in caplog.records] == [
        "bad one", "invalid commands ignored: over, 1 in all",
        "bad two", "invalid commands ignored: 1 more in the last 5 s (2 so far)"]


def test_backoff_doubles_to_the_cap_and_resets():
    b = Backoff(1.0, 8.0)
    assert [b.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    b.reset()
    assert b.next() == 1.0
