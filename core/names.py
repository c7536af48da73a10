"""The one rule for a run's name, wherever one is made or read: a folder under the runs folders, a pulled run
(`core pull --name`), a retrained run, an archive's folder.

Letters, digits, '.', '_' and '-', starting with a letter or a digit, at most 100 characters: nothing that a
spreadsheet reads as a formula (= + - @ first), a Markdown renderer as a link, a shell as an option or a zip
extractor as a way out of its folder (.. / \\).
"""

from __future__ import annotations

import re

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RULE = "use letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 100 characters)"


def problem(name: object) -> str | None:
    """Why `name` is not a valid run name, or None when it is."""
    if isinstance(name, str) and RUN_NAME.fullmatch(name):
        return None
    return f"invalid run name: {RULE}"


def check(name: object) -> str:
    """`name` when it is a valid run name; else ValueError saying the rule."""
    why = problem(name)
    if why:
        raise ValueError(f"{name!r}: {why}")
    return name
