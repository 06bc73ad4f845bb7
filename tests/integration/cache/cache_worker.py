"""One worker process of the shared-Redis test: look one key up, computing it only when told to.

Usage: python cache_worker.py REDIS_URL L2_PATH KEY (compute|expect-hit)
Prints one JSON line: whether the result was cached, its text and the Redis hit count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from cache_fixtures import caching, transcript

from stream_app.cache import build_cache
from stream_app.inference.types import WindowTranscript


def main() -> None:
    url, l2_path, key, mode = sys.argv[1:5]
    cache = build_cache(caching(url, Path(l2_path), redis_timeout="1s"))

    def compute() -> WindowTranscript:
        if mode == "expect-hit":
            raise RuntimeError("this worker should have found the other's result")
        return transcript(window_start=30.0, text="computed by the first worker")

    got = cache.get_or_compute(key, compute, window_start=30.0)
    stats = cache.stats()
    print(
        orjson.dumps(
            {
                "cached": got.cached,
                "text": got.text,
                "first_word_start": got.words[0].start,
                "redis_hits": stats.tiers["redis"].hits,
                "computes": stats.computes,
            }
        ).decode()
    )
    cache.close()


if __name__ == "__main__":
    main()
