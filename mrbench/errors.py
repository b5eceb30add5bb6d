"""Errors that mrbench reports to users as one line (the CLI exits with code 2, no traceback)."""

from __future__ import annotations

from os import PathLike


class MrbenchError(Exception):
    """Base class of every user-facing error: bad input, missing files, checksum mismatches."""


class ValidationError(MrbenchError):
    """Invalid content in an input file; the message names file, line, qid and field when known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | PathLike[str] | None = None,
        line: int | None = None,
        qid: object = None,
        field: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.line = line
        self.qid = qid
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        elif self.line is not None:
            where = f"line {self.line}"
        parts = [where] if where else []
        if self.qid is not None:
            parts.append(f"qid {self.qid!r}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        prefix = ": ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class MissingFeaturesError(MrbenchError):
    """Feature files that a dataset needs are absent; the message lists them."""

    def __init__(self, root: str | PathLike[str], missing: dict[str, list[str]]) -> None:
        self.root = str(root)
        self.missing = missing
        total = sum(len(v) for v in missing.values())
        shown = []
        for kind, names in missing.items():
            head = ", ".join(names[:10]) + (f", ... (+{len(names) - 10} more)" if len(names) > 10 else "")
            shown.append(f"{kind}: {head}")
        super().__init__(f"{total} feature file(s) missing under {self.root}: " + "; ".join(shown))


def os_error_text(exc: OSError) -> str:
    """One line for an error of the file system: the path(s) and the system's reason."""
    reason = exc.strerror or str(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason
