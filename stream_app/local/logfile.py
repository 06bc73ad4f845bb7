"""Excerpts of a service's log file for error messages: the first errors, then the last lines."""

from __future__ import annotations

from pathlib import Path

# Substrings that mark the lines explaining a failed start (Kafka's log4j levels, JVM exceptions, Redis).
ERROR_MARKS = (" ERROR ", " FATAL ", "Exception:", "Error:", "already in use", "# Fatal", "Could not")


def log_excerpt(text: str, *, errors: int = 3, last: int = 10) -> str:
    """Return the first ``errors`` error lines and the last ``last`` lines of a log's text."""
    lines = text.splitlines()
    found = [line for line in lines if any(mark in line for mark in ERROR_MARKS)][:errors]
    parts = []
    if found:
        parts.append("first errors:\n" + "\n".join(found))
    parts.append("last lines:\n" + ("\n".join(lines[-last:]) if lines else "(empty log)"))
    return "\n".join(parts)


def read_log_excerpt(path: Path) -> str:
    """Return `log_excerpt` of the file at ``path``, or a note that it does not exist."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log file yet)"
    return log_excerpt(text)
