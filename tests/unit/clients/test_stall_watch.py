"""When a producer that acknowledges nothing is replaced: never during an outage it rides out itself."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream_app.clients.stall_watch import StallWatch

STEP = 0.05


def _replaced_at(watch: StallWatch, *, broker_back: float, producer_back: float | None, horizon: float) -> float | None:
    """Drive the watch as the publisher does: chunks held from t=0, polled every ``STEP``.

    The broker answers fresh connections from ``broker_back``; the producer acknowledges a chunk at
    ``producer_back`` and then keeps up (None: never). Returns when the watch said to replace it.
    """
    watch.holding(0.0)
    t = 0.0
    while t < horizon:
        if producer_back is not None and t >= producer_back:
            watch.settled(t, holding=True)
        if watch.probe_due(t) and watch.probed(t, answering=t >= broker_back):
            return t
        t = round(t + STEP, 6)
    return None


def test_nothing_is_stalled_before_the_timeout_and_nothing_held_is_never_stalled() -> None:
    watch = StallWatch(stall_timeout=10.0)
    assert not watch.stalled(100.0)  # holds nothing
    watch.holding(0.0)
    watch.holding(5.0)  # a later chunk does not restart the quiet time
    assert not watch.stalled(9.9)
    assert watch.stalled(10.0)
    watch.settled(12.0, holding=False)
    assert not watch.stalled(50.0)


def test_a_stuck_producer_is_replaced_once_the_broker_answered_for_the_timeout() -> None:
    watch = StallWatch(stall_timeout=10.0, probe_every=5.0)
    # broker away until 30 s; probes at 10, 15, 20, 25 fail; 30 answers; replaced at the probe 10 s later
    assert _replaced_at(watch, broker_back=30.0, producer_back=None, horizon=120.0) == 40.0


def test_probes_are_spaced() -> None:
    watch = StallWatch(stall_timeout=3.0, probe_every=5.0)
    watch.holding(0.0)
    assert not watch.probe_due(2.9)
    assert watch.probe_due(3.0)
    assert not watch.probed(3.0, answering=False)
    assert not watch.probe_due(7.9)
    assert watch.probe_due(8.0)


def test_a_failed_probe_restarts_the_broker_answering_time() -> None:
    watch = StallWatch(stall_timeout=10.0, probe_every=5.0)
    watch.holding(0.0)
    assert not watch.probed(10.0, answering=True)
    assert not watch.probed(15.0, answering=False)  # a blip: the broker must answer 10 s again
    assert not watch.probed(20.0, answering=True)
    assert not watch.probed(25.0, answering=True)
    assert watch.probed(30.0, answering=True)


@given(
    outage=st.floats(0.0, 600.0),
    reconnect=st.floats(0.0, 9.9),
    stall=st.sampled_from([10.0, 15.0, 30.0]),
)
def test_a_producer_that_delivers_within_the_timeout_of_the_brokers_return_is_never_replaced(
    outage: float, reconnect: float, stall: float
) -> None:
    watch = StallWatch(stall_timeout=stall)
    back = outage + min(reconnect, stall - 0.1)
    assert _replaced_at(watch, broker_back=outage, producer_back=back, horizon=back + 3 * stall) is None


@given(outage=st.floats(0.0, 600.0), stall=st.sampled_from([1.0, 10.0, 15.0]))
def test_a_producer_that_never_delivers_is_replaced_soon_after_the_brokers_return(outage: float, stall: float) -> None:
    watch = StallWatch(stall_timeout=stall, probe_every=5.0)
    replaced = _replaced_at(watch, broker_back=outage, producer_back=None, horizon=outage + 10 * stall + 60.0)
    assert replaced is not None
    # the broker answered ``stall`` before, seen by a probe at most ``probe_every`` late
    assert max(outage, 0.0) + stall <= replaced + STEP
    assert replaced <= max(outage, stall) + stall + 2 * watch.probe_every + STEP


def test_a_replacement_that_delivers_nothing_waits_twice_as_long_and_an_acknowledgement_resets_it() -> None:
    watch = StallWatch(stall_timeout=10.0, probe_every=5.0)
    watch.holding(0.0)
    assert watch.stalled(10.0)
    watch.replaced(10.0, holding=True)
    assert watch.limit == 20.0
    assert not watch.stalled(29.9)
    assert watch.stalled(30.0)
    assert not watch.probed(30.0, answering=True)
    assert not watch.probed(45.0, answering=True)
    assert watch.probed(50.0, answering=True)  # answering for 20 s
    watch.replaced(50.0, holding=True)
    assert watch.limit == 40.0
    watch.settled(51.0, holding=True)  # the replacement delivered: back to the plain timeout
    assert watch.limit == 10.0
    assert watch.stalled(61.0)
