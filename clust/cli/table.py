"""Plain-text tables: columns padded to their widest cell, numbers right-aligned."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_table"]


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[bool] | None = None,
    footer: Sequence[Sequence[str]] = (),
) -> str:
    """The table as text; ``right[i]`` right-aligns column ``i``; ``footer`` rows come
    after a rule (e.g. a total)."""
    aligned = list(right) if right is not None else [False] * len(headers)
    every = [list(headers), *map(list, rows), *map(list, footer)]
    widths = [max(len(row[i]) for row in every) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(widths[i]) if aligned[i] else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(padded).rstrip()

    out = [line(headers), line(["-" * width for width in widths])]
    out.extend(line(row) for row in rows)
    if footer:
        out.append(line(["-" * width for width in widths]))
        out.extend(line(row) for row in footer)
    return "\n".join(out)
