"""Text for an admin's terminal: data shown with its control characters made visible."""

from __future__ import annotations


def printable(text: object) -> str:
    """`text` on one line: escape sequences, line breaks, bidi and other invisible
    characters written out (`\\x1b`, `\\n`, `\\u202e`), so data can neither drive the
    terminal nor forge a line of output."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def printable_lines(text: str) -> str:
    """`printable` for each line of a text that is several lines on purpose."""
    return "\n".join(printable(line) for line in text.split("\n"))
