"""How every benchmark reports: a table for people, then one JSON object on the last line for machines."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import orjson

# the packages whose version changes what a benchmark prints: CTranslate2's kernels decide the words a
# window decodes to (docs/benchmarks/streaming.md, "A new runtime")
RUNTIME_PACKAGES = ("ctranslate2", "faster-whisper", "onnxruntime", "numpy")


def runtime_versions() -> str:
    """Return the installed versions of `RUNTIME_PACKAGES` ("ctranslate2 4.8.5, faster-whisper 1.2.1, ...")."""
    found = []
    for name in RUNTIME_PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render rows as an aligned text table (floats with 3 significant decimals)."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    cells = [[_cell(row.get(col)) for col in cols] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(cols)]
    line = "  ".join(col.ljust(w) for col, w in zip(cols, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, rule, *body])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return "-" if value is None else str(value)


def emit(title: str, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], *, as_json: bool) -> None:
    """Print the table and the summary; with ``as_json`` the summary also goes out as the last line.

    The summary gains ``runtime`` (`runtime_versions`): figures compare only between runs of one runtime.
    """
    summary = {**summary, "runtime": summary.get("runtime") or runtime_versions()}
    print(f"== {title}")
    print(format_table(rows))
    print()
    for key, value in summary.items():
        if not key.endswith("rows"):
            print(f"{key:>28}: {_cell(value)}")
    if as_json:
        print(orjson.dumps(summary, option=orjson.OPT_SERIALIZE_NUMPY).decode())
