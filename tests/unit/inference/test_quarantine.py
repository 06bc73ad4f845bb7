from __future__ import annotations

import threading
import time

from stream_app.inference.quarantine import CallGate

WAIT = 5.0


def test_shared_calls_overlap_and_an_exclusive_call_runs_alone() -> None:
    gate = CallGate()
    log: list[str] = []
    lock = threading.Lock()
    first_inside = threading.Event()
    release_first = threading.Event()

    def shared(name: str, hold: threading.Event | None = None) -> None:
        with gate.enter(exclusive=False):
            with lock:
                log.append(f"{name} in")
            if hold is not None:
                first_inside.set()
                assert hold.wait(WAIT)
            with lock:
                log.append(f"{name} out")

    def exclusive() -> None:
        with gate.enter(exclusive=True):
            with lock:
                log.append("x in")
            time.sleep(0.05)
            with lock:
                log.append("x out")

    a = threading.Thread(target=shared, args=("a", release_first))
    a.start()
    assert first_inside.wait(WAIT)
    b = threading.Thread(target=shared, args=("b",))
    b.start()
    b.join(WAIT)
    assert log == ["a in", "b in", "b out"]  # two ordinary calls run side by side
    x = threading.Thread(target=exclusive)
    x.start()
    time.sleep(0.1)
    c = threading.Thread(target=shared, args=("c",))  # arrives while the exclusive call waits
    c.start()
    time.sleep(0.1)
    assert "x in" not in log and "c in" not in log  # x waits for a; c waits behind x
    release_first.set()
    for thread in (a, x, c):
        thread.join(WAIT)
    assert log[3:] == ["a out", "x in", "x out", "c in", "c out"]
