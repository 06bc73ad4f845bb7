"""Configuration: one validated, immutable object for the whole service."""

from stream_app.config.exceptions import ConfigError
from stream_app.config.loader import load_settings
from stream_app.config.settings import PROFILES, Settings, expand_path

__all__ = ["PROFILES", "ConfigError", "Settings", "expand_path", "load_settings"]
