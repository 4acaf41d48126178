"""Errors the CLI prints as one line (``mos-tools: error: ...``) with exit status 2."""

from __future__ import annotations


class MosError(Exception):
    """Bad input the user can fix; the message names the file, row, field or flag."""
