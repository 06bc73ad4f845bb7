"""Captions people watch: subtitle files (SRT, WebVTT), the caption board and its web page."""
