"""Fetch the Kafka broker's jars from Maven Central once, into the local stack's cache folder."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from stream_app.local.endpoints import StackLayout
from stream_app.local.exceptions import LocalStackError
from stream_app.local.rendering import render_pom

log = logging.getLogger(__name__)

COMPLETE_MARKER = ".complete"
FETCH_TIMEOUT_S = 900.0


def kafka_jars_present(layout: StackLayout) -> bool:
    """Return whether a previous fetch of this Kafka version finished."""
    return (layout.kafka_dist / COMPLETE_MARKER).is_file()


def fetch_kafka_jars(layout: StackLayout) -> Path:
    """Make sure the jars of ``layout.kafka_version`` plus log4j2 are in ``layout.kafka_libs``.

    Maven resolves them into a temporary folder that replaces ``libs`` only when it succeeded, so an
    interrupted fetch never leaves a half-filled class path behind.

    Raises:
        LocalStackError: when Maven is missing or the resolution fails.
    """
    if kafka_jars_present(layout):
        return layout.kafka_libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalStackError("Maven (`mvn`) is needed once to fetch the Kafka jars (apt install maven)")
    layout.kafka_dist.mkdir(parents=True, exist_ok=True)
    log.info("fetching Kafka %s jars with Maven into %s", layout.kafka_version, layout.kafka_libs)
    with tempfile.TemporaryDirectory(dir=layout.kafka_dist, prefix="fetch-") as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(render_pom(layout.kafka_version), encoding="utf-8")
        staged = Path(work) / "libs"
        argv = [
            mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={staged}",
        ]  # fmt: skip
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise LocalStackError(f"Maven did not fetch Kafka within {FETCH_TIMEOUT_S:.0f} s") from None
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-3000:]
            raise LocalStackError(f"Maven could not fetch Kafka {layout.kafka_version}:\n{output}")
        if not any(staged.glob(f"kafka_2.13-{layout.kafka_version}.jar")):
            raise LocalStackError(f"Maven finished but no kafka_2.13-{layout.kafka_version}.jar in {staged}")
        if layout.kafka_libs.exists():
            shutil.rmtree(layout.kafka_libs)
        staged.rename(layout.kafka_libs)
    (layout.kafka_dist / COMPLETE_MARKER).write_text(layout.kafka_version + "\n", encoding="utf-8")
    return layout.kafka_libs
