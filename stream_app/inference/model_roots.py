"""Which models a live switch may load: a registry name, or a folder under ``optimization.model_roots``.

Anyone who can write to the control topic can ask every replica to load a model, so the request is
checked before anything is read from disk. A registry name (``tiny.en``, ``base``) is always
allowed. A path must be absolute, must not start with ``~`` (``~user`` would pick another user's
home) and must not contain ``..``; it is then resolved, symlinks included, and must lie inside one
of the resolved roots. No roots configured means registry names only. Nothing here loads a model:
the only I/O is resolving symlinks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from stream_app.inference.exceptions import InferenceError
from stream_app.inference.models import KNOWN_MODELS


class ModelNotAllowed(InferenceError):
    """A switch asked for a model that is neither a registry name nor a folder under the model roots."""


def allowed_model(request: str, roots: Iterable[str], registry: Collection[str] = tuple(KNOWN_MODELS)) -> str:
    """Return what to load for ``request``: the registry name itself, or the resolved absolute folder.

    Loading the resolved folder (not the path as written) means a symlink swapped after this check
    cannot redirect the load outside the roots.

    Raises:
        ModelNotAllowed: with the reason, naming the request and the configured roots.
    """
    if request in registry:
        return request
    known = ", ".join(registry)
    if not request or "\x00" in request:
        raise ModelNotAllowed(f"model {request!r} is not a model name or a folder path")
    if request.startswith("~"):
        raise ModelNotAllowed(f"model {request!r}: paths relative to a home folder (~, ~user) are refused")
    path = Path(request)
    if not path.is_absolute():
        raise ModelNotAllowed(f"model {request!r} is neither a registry model ({known}) nor an absolute folder path")
    if ".." in path.parts:
        raise ModelNotAllowed(f"model {request!r}: paths with '..' are refused")
    resolved_roots = [Path(root).expanduser().resolve() for root in roots]
    if not resolved_roots:
        raise ModelNotAllowed(
            f"model {request!r} is refused: no optimization.model_roots are configured, so only registry "
            f"models ({known}) can be switched to"
        )
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable component
        raise ModelNotAllowed(f"model {request!r} cannot be resolved ({type(exc).__name__})") from None
    for root in resolved_roots:
        if resolved.is_relative_to(root):
            return str(resolved)
    shown = ", ".join(str(root) for root in resolved_roots)
    # where a link leads is not said: the refusal goes on the control topic, and would map the file system
    where = "" if str(resolved) == request else " (through a link)"
    raise ModelNotAllowed(f"model {request!r} is outside the model roots{where}; allowed: {shown}")
