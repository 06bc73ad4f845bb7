import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from cache_fixtures import RedisServer

pytestmark = pytest.mark.integration

WORKER = Path(__file__).parent / "cache_worker.py"


def _worker(server: RedisServer, l2: Path, key: str, mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(WORKER), server.url, str(l2), key, mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_one_workers_result_is_the_others_redis_hit(redis_server: RedisServer, tmp_path: Path) -> None:
    first = _worker(redis_server, tmp_path / "replica-a", "shared-window", "compute")
    assert first == {
        "cached": False,
        "text": "computed by the first worker",
        "first_word_start": 30.0,
        "redis_hits": 0,
        "computes": 1,
    }
    second = _worker(redis_server, tmp_path / "replica-b", "shared-window", "expect-hit")
    assert second["cached"] is True
    assert second["text"] == "computed by the first worker"
    assert second["redis_hits"] == 1 and second["computes"] == 0
