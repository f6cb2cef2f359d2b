"""Counts in messages: `1 video`, `2 videos` (never "1 videos")."""
from __future__ import annotations


def count(n: int, noun: str) -> str:
    """`n` and the noun, plural unless n is 1 (regular nouns: video, file, fold, verdict, text)."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
