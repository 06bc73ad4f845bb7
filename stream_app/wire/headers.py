"""Kafka record headers in whatever shape a client hands them over, as one validated ``dict[str, str]``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from stream_app.wire.exceptions import ChunkRejected

HeaderValue = bytes | str | None
HeadersLike = Mapping[str, HeaderValue] | Sequence[tuple[str, HeaderValue]] | None

MAX_HEADER_VALUE = 4096  # characters; a CloudEvents attribute longer than this is garbage, not metadata


def headers_to_dict(headers: HeadersLike, only: Callable[[str], bool] | None = None) -> dict[str, str]:
    """Decode header values as UTF-8, names lower-cased.

    confluent-kafka gives a list of ``(str, bytes | None)``, aiokafka a sequence of tuples and faust a
    mapping; all are accepted. With ``only``, headers whose lower-cased name it refuses are skipped
    unread, so foreign headers (tracing, binary ids) can never get a record refused.

    Raises:
        ChunkRejected: ``bad_header`` for a repeated name, a value that is not UTF-8 or too long.
    """
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise ChunkRejected("bad_header", f"header entry {item!r} is not a (name, value) pair")
        name, raw = item
        key = str(name).lower()
        if only is not None and not only(key):
            continue
        if key in out:
            raise ChunkRejected("bad_header", f"header {name!r} appears more than once")
        if raw is None:
            value = ""
        elif isinstance(raw, bytes | bytearray | memoryview):
            try:
                value = bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                raise ChunkRejected("bad_header", f"header {name!r} is not UTF-8") from None
        else:
            value = str(raw)
        if len(value) > MAX_HEADER_VALUE:
            raise ChunkRejected("bad_header", f"header {name!r} is longer than {MAX_HEADER_VALUE} characters")
        out[key] = value
    return out


def headers_to_list(headers: HeadersLike) -> list[tuple[str, bytes]]:
    """Headers as confluent-kafka's list of ``(name, bytes)``, keeping order and undecodable bytes.

    Never raises: it is used to forward the headers of records that were refused.
    """
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, bytes]] = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], str):
            continue  # a malformed entry cannot be forwarded as a header; the value still is
        name, raw = item
        if raw is None:
            out.append((name, b""))
        elif isinstance(raw, str):
            out.append((name, raw.encode("utf-8")))
        else:
            out.append((name, bytes(raw)))
    return out
