"""Records a replica fetched (standby changelog and input) survive faust's resumes while flow is already on."""

from __future__ import annotations

from pathlib import Path

from stream_app.worker.flow_control import QueueKeepingFlowControl
from stream_app.worker.membership import MemberApp


def _app(tmp_path: Path) -> MemberApp:
    return MemberApp("flow-test", broker="kafka://127.0.0.1:1", store="memory://", datadir=str(tmp_path))


def test_a_resume_while_flowing_keeps_the_fetched_changelog_and_input_records(
    tmp_path: Path,
) -> None:
    app = _app(tmp_path)
    assert isinstance(app.flow_control, QueueKeepingFlowControl)
    changelog = app.tables.changelog_queue
    agent_buffer = app.FlowControlQueue(maxsize=10, clear_on_resume=True)  # as a faust stream's outbox is made
    app.flow_control.resume()  # the active changelogs start after the rebalance
    changelog.put_nowait("standby record 41")
    agent_buffer.put_nowait("input record 28, fetched after the seek")
    app.flow_control.resume()  # the stream partitions start: faust seeks them, then resumes again
    assert changelog.qsize() == 1, "a standby record fetched (its position moved past it) was dropped"
    assert agent_buffer.qsize() == 1, "an input record fetched (its position moved past it) was dropped"


def test_a_resume_after_a_suspension_empties_every_queue(tmp_path: Path) -> None:
    app = _app(tmp_path)
    changelog = app.tables.changelog_queue
    app.flow_control.resume()
    changelog.put_nowait("record of a partition this replica may no longer own")
    agent_buffer = app.FlowControlQueue(maxsize=10, clear_on_resume=True)
    agent_buffer.put_nowait("input record of a partition this replica may no longer own")
    app.flow_control.suspend()  # a rebalance begins
    app.flow_control.resume()
    assert changelog.qsize() == 0 and agent_buffer.qsize() == 0
    assert app.flow_control.is_active()
