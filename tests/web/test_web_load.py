"""64 concurrent HTTP clients toggling LEDs (a bounded number of requests): zero errors,
and the final state is exactly what the commands imply."""

from concurrent.futures import ThreadPoolExecutor

import requests

CLIENTS = 64
TOGGLES_PER_CLIENT = 2  # even: every LED ends where it started


def test_64_concurrent_clients_toggling(web):
    before = web.get("/api/state").json()

    def client(n):
        led = n % 2
        errors, seqs = [], []
        with requests.Session() as session:
            for _ in range(TOGGLES_PER_CLIENT):
                r = session.post(web.url + "/api/leds/%d" % led, json={"toggle": True}, timeout=30)
                if r.status_code != 200:
                    errors.append((r.status_code, r.text[:200]))
                else:
                    seqs.append(r.json()["seq"])
            r = session.get(web.url + "/api/state", timeout=30)
            if r.status_code != 200:
                errors.append((r.status_code, r.text[:200]))
        return errors, seqs

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))

    errors = [e for errs, _ in results for e in errs]
    assert errors == [], errors[:5]
    seqs = sorted(s for _, ss in results for s in ss)
    total = CLIENTS * TOGGLES_PER_CLIENT
    # Every toggle was one state change, and each answer carried its own, distinct seq.
    assert seqs == list(range(before["seq"] + 1, before["seq"] + total + 1))
    after = web.get("/api/state").json()
    assert after["seq"] == before["seq"] + total
    assert [led["on"] for led in after["leds"]] == [led["on"] for led in before["leds"]]
    assert after == web.ledd.client().state()
