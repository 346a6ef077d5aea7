"""Read a tool's description and its parameters' descriptions from a docstring.

Understands the three common styles:

- Google: an ``Args:`` (or ``Arguments:``, ``Parameters:``, ``Keyword Args:``) section
  with ``name: text`` or ``name (type): text`` entries, continued on indented lines;
- NumPy: a ``Parameters`` heading underlined with dashes, ``name : type`` entries with
  the text indented below;
- reST: ``:param name: text`` (or ``:param type name: text``) fields.

The description is the prose before the first section (``Args:``, ``Returns:``,
``Raises:``, a NumPy heading or a ``:field:``), so implementation notes kept in those
sections never reach the model.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

__all__ = ["ParsedDocstring", "parse_docstring"]

_PARAM_SECTIONS = frozenset(
    {
        "args",
        "arguments",
        "parameters",
        "params",
        "keyword args",
        "keyword arguments",
        "other parameters",
    }
)
_OTHER_SECTIONS = frozenset(
    {
        "returns",
        "return",
        "yields",
        "yield",
        "raises",
        "raise",
        "exceptions",
        "warns",
        "example",
        "examples",
        "note",
        "notes",
        "warning",
        "warnings",
        "see also",
        "references",
        "attributes",
        "methods",
        "todo",
    }
)
_SECTIONS = _PARAM_SECTIONS | _OTHER_SECTIONS

_GOOGLE_HEADER = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_REST_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_REST_FIELD = re.compile(r"^:\w[^:]*:")


@dataclass(frozen=True)
class ParsedDocstring:
    """What a docstring says: the description and one text per documented parameter."""

    description: str | None = None
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """Split ``doc`` into its description and its parameter descriptions."""
    if not doc or not doc.strip():
        return ParsedDocstring()
    lines = inspect.cleandoc(doc).splitlines()
    params: dict[str, str] = {}
    prose: list[str] = []
    i = 0
    in_prose = True
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        following = lines[i + 1] if i + 1 < len(lines) else ""
        numpy = _NUMPY_RULE.match(following) and stripped.lower() in _SECTIONS
        google = _GOOGLE_HEADER.match(line)
        if numpy:
            in_prose = False
            end = _numpy_section_end(lines, i + 2)
            if stripped.lower() in _PARAM_SECTIONS:
                params.update(_numpy_entries(lines[i + 2 : end]))
            i = end
        elif google and google.group(1).lower() in _SECTIONS:
            in_prose = False
            end = _indented_block_end(lines, i + 1, _indent(line))
            if google.group(1).lower() in _PARAM_SECTIONS:
                params.update(_google_entries(lines[i + 1 : end]))
            i = end
        elif _REST_FIELD.match(stripped):
            in_prose = False
            end = _indented_block_end(lines, i + 1, _indent(line))
            rest = _REST_PARAM.match(stripped)
            if rest:
                params[rest.group(1)] = _join([rest.group(2), *lines[i + 1 : end]])
            i = end
        else:
            if in_prose:
                prose.append(line)
            i += 1
    description = "\n".join(prose).strip() or None
    return ParsedDocstring(description, params)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _indented_block_end(lines: list[str], start: int, header_indent: int) -> int:
    """Index of the first non-blank line at or left of ``header_indent`` from ``start``."""
    i = start
    while i < len(lines):
        if lines[i].strip() and _indent(lines[i]) <= header_indent:
            return i
        i += 1
    return i


def _numpy_section_end(lines: list[str], start: int) -> int:
    """Index of the next NumPy heading (a section name underlined with dashes)."""
    i = start
    while i < len(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if _NUMPY_RULE.match(following) and lines[i].strip().lower() in _SECTIONS:
            return i
        i += 1
    return i


def _join(parts: list[str]) -> str:
    """Entry text: its lines joined with spaces, paragraphs kept apart."""
    paragraphs: list[list[str]] = [[]]
    for part in parts:
        if part.strip():
            paragraphs[-1].append(part.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return "\n\n".join(" ".join(words) for words in paragraphs if words)


def _google_entries(block: list[str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    content = [line for line in block if line.strip()]
    if not content:
        return entries
    entry_indent = min(_indent(line) for line in content)
    name: str | None = None
    text: list[str] = []
    for line in block:
        if line.strip() and _indent(line) == entry_indent:
            if name is not None:
                entries[name] = _join(text)
            match = _GOOGLE_ENTRY.match(line.strip())
            name, text = (match.group(1), [match.group(2)]) if match else (None, [])
        elif name is not None:
            text.append(line)
    if name is not None:
        entries[name] = _join(text)
    return entries


def _numpy_entries(block: list[str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    content = [line for line in block if line.strip()]
    if not content:
        return entries
    entry_indent = min(_indent(line) for line in content)
    names: list[str] = []
    text: list[str] = []

    def flush() -> None:
        for name in names:
            entries[name] = _join(text)

    for line in block:
        if line.strip() and _indent(line) == entry_indent:
            flush()
            match = _NUMPY_ENTRY.match(line.strip())
            names = [n.strip().lstrip("*") for n in match.group(1).split(",")] if match else []
            text = []
        elif names:
            text.append(line)
    flush()
    return entries
