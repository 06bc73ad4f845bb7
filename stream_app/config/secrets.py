"""Secret values: passwords that never show themselves in reprs, `config show`, logs or status records.

A `Secret` holds the text; only `Secret.reveal` returns it, for the one place that hands it to a
client library. Everything that prints configuration sees ``***`` instead. Credentials written
inside a URL (``rediss://user:pw@host``) are masked by `redact_url`.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"


class Secret:
    """A text value whose ``str`` and ``repr`` are ``***`` (empty when no secret is set)."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret text itself, for handing to a client library and nothing else."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __str__(self) -> str:
        return MASK if self._value else ""

    def __repr__(self) -> str:
        return f"'{MASK}'" if self._value else "''"


def url_password(url: str) -> str:
    """Return the password written in a URL's user information, or an empty string."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def redact_url(url: str) -> str:
    """Replace the password in a URL's user information with ``***``; the rest stays readable."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK  # not a URL we can read: show nothing of it rather than a secret
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` with ``***`` (longest first)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
