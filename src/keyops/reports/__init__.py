"""Reporters of ``keyops check``: text, json (shared with validate), sarif, github, markdown."""

FORMATS = ("text", "json", "sarif", "github", "markdown")
