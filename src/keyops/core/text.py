"""Text from a server, made safe to print: shared by everything that reports a peer's words."""

from __future__ import annotations


def printable(text: str, limit: int) -> str:
    """Server-chosen text, made safe to print: no control characters, bounded length."""
    return "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
