"""The command lines a Markdown file shows: every fenced bash/sh/shell/console block (and cron lines), with
``\\`` continuations joined, quotes left open across lines joined, heredocs kept with their command,
comments and ``$ `` prompts removed. Used by tests/test_readme_commands.py."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

SHELL = ("bash", "sh", "shell", "console", "zsh")
FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")


@dataclass(frozen=True)
class Line:
    """One command as a shell would read it, and where the file shows it."""

    file: str
    lineno: int
    lang: str
    text: str  # continuations joined with a space, comment removed, whitespace collapsed outside quotes

    def __str__(self) -> str:
        return f"{self.file}:{self.lineno}: {self.text}"


def strip_comment(line: str) -> str:
    """The line up to its first `#` that starts a word outside quotes (as bash reads a comment)."""
    quote = ""
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def complete(text: str) -> bool:
    """Whether the shell would stop reading here: no quote left open, no trailing backslash."""
    if text.endswith("\\"):
        return False
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


def block_commands(body: str, lang: str) -> list[tuple[int, str]]:
    """(offset of the first line in the block, command) for each command of one fenced block."""
    raw = body.splitlines()
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(raw):
        start, line = i, raw[i]
        i += 1
        if lang == "console":
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        if lang == "cron":
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            line = line.split(None, 5)[5]
        text = strip_comment(line)
        while not complete(text) and i < len(raw):
            nxt = raw[i][2:] if lang == "console" and raw[i].startswith("> ") else raw[i]
            i += 1
            text = text[:-1] + " " + strip_comment(nxt).lstrip() if text.endswith("\\") else text + "\n" + nxt
        heredoc = HEREDOC.search(text)
        if heredoc:
            while i < len(raw) and raw[i].strip() != heredoc.group(1):
                text += "\n" + raw[i]
                i += 1
            text += "\n" + heredoc.group(1)
            i += 1
        text = " ".join(text.split(" ")).strip() if "\n" in text else " ".join(text.split())
        if text:
            out.append((start, text))
    return out


def commands(path: Path, root: Path) -> list[Line]:
    """Every command line of the shell and cron blocks of a Markdown file, in order."""
    source = path.read_text()
    name = str(path.relative_to(root))
    lines: list[Line] = []
    for fence in FENCE.finditer(source):
        indent, lang = len(fence.group(1)), fence.group(2) or "text"
        if lang not in SHELL + ("cron",):
            continue
        first = source.count("\n", 0, fence.start(3)) + 1
        body = "\n".join(line[indent:] for line in fence.group(3).splitlines())
        for offset, text in block_commands(body, lang):
            lines.append(Line(name, first + offset, lang, text))
    return lines
