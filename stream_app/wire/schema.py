"""The JSON Schemas of the wire contract (``schemas/`` at the repository root), loaded once and applied.

The codecs check messages by hand (fast, with reason codes); these validators are the contract's
own text, used by tests and by anyone who wants to check a message against what is published.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from stream_app.wire.exceptions import SchemaViolation

# The repository's top-level schemas/ is the contract; the package reaches it through the link
# stream_app/wire/schemas, which a wheel build turns into a copy.
SCHEMA_DIR = Path(__file__).parent / "schemas"
CHUNK_SCHEMA = "audio-chunk.v1.json"
SEGMENT_SCHEMA = "transcript-segment.v3.json"
# Records published by earlier releases stay readable: v1 (before sessions and gaps), v2 (finals at revision 0).
OLDER_SEGMENT_SCHEMAS = {1: "transcript-segment.v1.json", 2: "transcript-segment.v2.json"}


def load_schema(name: str) -> dict[str, Any]:
    """Read one schema file from ``schemas/``."""
    path = SCHEMA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"schema {name} not found in {SCHEMA_DIR}")
    schema: dict[str, Any] = orjson.loads(path.read_bytes())
    return schema


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate_segment(document: Mapping[str, Any]) -> None:
    """Check a decoded segment JSON object against transcript-segment.v3 (v1 or v2 for such a record).

    Raises:
        SchemaViolation: the first rule broken, with the path to the offending field.
    """
    version = document.get("schema_version")
    older = OLDER_SEGMENT_SCHEMAS.get(version) if isinstance(version, int) and not isinstance(version, bool) else None
    _validate(older or SEGMENT_SCHEMA, document)


def validate_chunk_headers(headers: Mapping[str, str]) -> None:
    """Check a chunk's headers (names to UTF-8 strings) against audio-chunk.v1.

    Raises:
        SchemaViolation: the first rule broken, with the header that broke it.
    """
    _validate(CHUNK_SCHEMA, headers)


def _validate(name: str, document: Mapping[str, Any]) -> None:
    errors = sorted(_validator(name).iter_errors(dict(document)), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise SchemaViolation(f"{name}: {where}: {first.message}")
