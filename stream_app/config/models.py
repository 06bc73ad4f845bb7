"""``optimization.model`` checked at start-up: a model the registry knows, or a CTranslate2 model folder.

A name nobody knows (``small``) used to pass ``config show`` and fail only when a worker loaded it.
"""

from __future__ import annotations

from pathlib import Path

from stream_app.config.exceptions import ConfigError
from stream_app.config.languages import check_model_language
from stream_app.inference.models import KNOWN_MODELS, MODEL_FILE


def looks_like_path(name: str) -> bool:
    """Whether a model setting names a folder rather than a registry model (it has a slash, or starts with ~ or .)."""
    return "/" in name or name.startswith(("~", "."))


def check_model_setting(model: str, language: str) -> None:
    """Refuse an unknown model name, a folder without ``model.bin``, or a language the model cannot serve.

    Raises:
        ConfigError: naming ``optimization.model`` or ``streaming.language`` and the values allowed.
    """
    known = KNOWN_MODELS.get(model)
    if known is not None:
        check_model_language(model, known.multilingual, language)
        return
    if not looks_like_path(model):
        raise ConfigError(
            "optimization.model",
            model,
            f"not a model stream-app knows; use one of {', '.join(KNOWN_MODELS)} "
            f"(stream-app models list) or the path of a CTranslate2 model folder holding {MODEL_FILE}",
        )
    folder = Path(model).expanduser()
    if not (folder / MODEL_FILE).is_file():
        raise ConfigError(
            "optimization.model",
            model,
            f"no CTranslate2 model folder there: {folder / MODEL_FILE} does not exist",
        )
    check_model_language(model, None, language)
