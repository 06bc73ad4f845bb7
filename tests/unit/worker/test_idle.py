from stream_app.worker.idle import IDLE_EVENT_TYPE, IdleTracker, idle_tick_headers, read_idle_tick


def test_a_stream_is_due_once_after_the_timeout_with_its_partition() -> None:
    tracker = IdleTracker(timeout=5.0)
    tracker.seen("a", seq=7, now=100.0, partition=3)
    tracker.seen("b", seq=1, now=103.0, partition=0)
    assert tracker.due(104.0) == []
    assert tracker.due(105.0) == [("a", 7, 3)]
    assert tracker.due(106.0) == []  # already ticked
    assert tracker.due(108.0) == [("b", 1, 0)]


def test_a_new_chunk_resets_the_clock() -> None:
    tracker = IdleTracker(timeout=5.0)
    tracker.seen("a", seq=1, now=100.0, partition=1)
    tracker.seen("a", seq=2, now=104.0, partition=1)
    assert tracker.due(106.0) == []
    assert tracker.due(109.0) == [("a", 2, 1)]


def test_a_lost_tick_is_sent_again() -> None:
    tracker = IdleTracker(timeout=5.0)
    tracker.seen("a", seq=1, now=100.0)
    assert tracker.due(105.0) == [("a", 1, None)]
    assert tracker.due(115.0) == []  # the re-arm happens after three timeouts
    assert tracker.due(121.0) == [("a", 1, None)]


def test_adopted_streams_are_watched_and_forgotten() -> None:
    tracker = IdleTracker(timeout=5.0)
    tracker.adopt("restored", now=100.0)
    assert "restored" in tracker and len(tracker) == 1
    assert tracker.due(105.0) == [("restored", -1, None)]
    tracker.forget("restored")
    assert len(tracker) == 0
    tracker.adopt("x", now=0.0)
    tracker.clear()
    assert len(tracker) == 0


def test_tick_headers_round_trip() -> None:
    headers = idle_tick_headers(41)
    assert (b"ce_type", IDLE_EVENT_TYPE.encode()) in [(n.encode(), v) for n, v in headers]
    assert read_idle_tick(headers) == 41
    assert read_idle_tick([("ce_type", b"dev.stream-app.audio.chunk"), ("ce_seq", b"3")]) is None
    assert read_idle_tick([("ce_type", IDLE_EVENT_TYPE.encode()), ("ce_seq", b"x")]) == -1
    assert read_idle_tick(None) is None
