"""Mask the configured secrets in every log record, whichever library logs it and whichever handler prints it.

The mask is applied where records are made (the log record factory), not in one handler: faust and
mode install their own handlers when a worker starts, and a filter on ours would not see theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from stream_app.config.secrets import redact_text

_secrets: tuple[str, ...] = ()
_base_factory: Any = None


def install_log_redaction(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` (as ``***``) in the messages and tracebacks of every record created from now on.

    Calling it again replaces the set of secrets; an empty set leaves records untouched.
    """
    global _secrets, _base_factory
    _secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
    if _base_factory is None:
        _base_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_make_record)


def _make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _base_factory(*args, **kwargs)
    if _secrets:
        redact_record(record, _secrets)
    return record


def redact_record(record: logging.LogRecord, secrets: Iterable[str]) -> None:
    """Rewrite ``record`` in place so that neither its message nor its traceback holds a secret."""
    secrets = tuple(secrets)
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it later, with the raw arguments masked
        message = f"{record.msg} {record.args}"
    masked = redact_text(message, secrets)
    if masked != message:
        record.msg, record.args = masked, ()  # not None: mode's formatter would format it as an argument
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        masked_text = redact_text(text, secrets)
        if masked_text != text:
            record.exc_text = masked_text  # formatters print exc_text as is when it is set
