"""Text from outside (a dataset's strings, a model's answers, a child's stderr) made safe to show.

A terminal obeys the control characters in what it is sent: ESC [ 2J clears the screen,
ESC ] 52 writes the clipboard, ESC ] 0 sets the window title, C1 codes (U+0080-U+009F) act like
ESC sequences in many terminals, and a lone carriage return overwrites the line. `printable`
shows each of them as a visible mark instead: a C0 code as its Unicode control picture (ESC
becomes ␛, CR ␍, NUL ␀), DEL as ␡, and a C1 code as ␛ and its 7-bit twin (CSI, U+009B,
becomes ␛[). Tabs and line ends stay; CR LF becomes a line end. The UI shows every foreign
string through it, and the CLI does when its output is a terminal.
"""

from __future__ import annotations

import re
from typing import TextIO

CONTROL = re.compile("\r\n|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _mark(match: re.Match[str]) -> str:
    code = ord(match.group()[0])
    if match.group() == "\r\n":
        return "\n"
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return "\u241b" + chr(code - 0x40)


def printable(text: object) -> str:
    """`text` (made a string) with every control character but tab and line end shown as a mark."""
    text = text if isinstance(text, str) else str(text)
    return CONTROL.sub(_mark, text) if CONTROL.search(text) else text


def for_stream(text: object, stream: TextIO) -> str:
    """`printable(text)` when `stream` is a terminal, the text unchanged when it goes to a file or pipe."""
    isatty = getattr(stream, "isatty", None)
    return printable(text) if isatty is not None and isatty() else str(text)
