"""A users CSV, read row by row from a stream of bytes, in constant memory.

Plain synchronous code (it runs in a worker thread, see app.imports.service): bytes are split
into lines at b"\\n" (a byte that never occurs inside a UTF-8 sequence, so a character cut in two
by a chunk boundary is whole again in its line), and `csv.reader` turns lines into records
(quoted fields, embedded newlines, CRLF or LF). The whole lines of a chunk are decoded in one
call; when that fails, line by line (an undecodable line is that line's error, not the file's).
A line longer than `MAX_LINE_BYTES` is dropped as it arrives and reported: memory never holds
more than one such line's worth. A row is checked by app.imports.fast_rows, and by the
`ImportRow` model when that cheap check does not settle it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError

from app.imports.fast_rows import FastRows, ParsedRow
from app.imports.schemas import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, ImportRow, RowError
from app.wallet.schemas import to_minor

MAX_LINE_BYTES = 64 * 1024
BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class CsvFileError(Exception):
    """The file cannot be read as a users CSV at all (no header, a wrong header, not UTF-8)."""

    def __init__(self, error: RowError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class Batch:
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rejected: int = 0  # rows refused in this batch (a row may carry several errors)
    bytes_read: int = 0


def parse_header(line: str) -> list[str]:
    """The column names of a header line, or CsvFileError."""
    names = [name.strip().lower() for name in next(csv.reader([line]), [])]
    error = _header_error(names)
    if error:
        raise CsvFileError(RowError(line=1, column=None, message=error))
    return names


def _header_error(names: list[str]) -> str | None:
    allowed = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    expected = f"expected a header of {','.join(REQUIRED_COLUMNS)}[,{'][,'.join(OPTIONAL_COLUMNS)}]"
    if not names or names == [""]:
        return f"the file has no header: {expected}"
    unknown = [name for name in names if name not in allowed]
    if unknown:
        return f"unknown column(s) {', '.join(repr(n[:40]) for n in unknown[:5])}: {expected}"
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return f"column(s) {', '.join(repeated)} appear more than once"
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        return f"missing column(s) {', '.join(missing)}: {expected}"
    return None


# Line breaks of str.splitlines other than "\n" and "\r\n": where one occurs, splitting at "\n"
# must be done by hand (a record may hold any of them inside a quoted field).
_OTHER_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]|\r(?!\n)")


def _whole_lines(buffer: bytearray, chunk: bytes) -> tuple[list[str], int]:
    """The quick way through a chunk: the lines it completes (`buffer` holds the start of the
    first), decoded in one call, and the offset where its unfinished last line starts. ([], 0)
    when the careful way is needed: a byte that is not UTF-8 or a line that may be longer than
    MAX_LINE_BYTES (each is that line's error, found by the careful way)."""
    end = chunk.rfind(b"\n") + 1
    if end == 0:
        return [], 0
    try:
        text = (bytes(buffer) + chunk[:end] if buffer else chunk[:end]).decode("utf-8")
    except UnicodeDecodeError:
        return [], 0
    if _OTHER_LINE_BREAKS.search(text):
        lines = [line + "\n" for line in text.split("\n")[:-1]]
    else:
        lines = text.splitlines(keepends=True)
    # A character is at most 4 bytes: under this many characters, no line is too long.
    if max(map(len, lines)) > MAX_LINE_BYTES // 4:
        return [], 0
    return lines, end


class UsersCsvReader:
    """Iterate `batches()` over a stream of byte chunks."""

    def __init__(self, chunks: Iterable[bytes], *, batch_size: int = 1000) -> None:
        self._chunks = chunks
        self.batch_size = batch_size
        self.bytes_read = 0
        self._line = 0  # physical lines consumed
        self._record_start: int | None = None
        self._pending: list[RowError] = []  # line-level errors found while splitting

    # --- lines -----------------------------------------------------------------------------

    def _lines(self) -> Iterator[str]:
        buffer = bytearray()
        overlong = False
        for chunk in self._chunks:
            self.bytes_read += len(chunk)
            start = 0
            if not overlong and self._line > 0:
                lines, start = _whole_lines(buffer, chunk)
                if lines:
                    buffer.clear()
                    for text in lines:
                        self._line += 1
                        if self._record_start is None:
                            self._record_start = self._line
                        yield text
            # The rest of the chunk (all of it when the quick way did not apply), line by line.
            while True:
                end = chunk.find(b"\n", start)
                piece = chunk[start:] if end < 0 else chunk[start : end + 1]
                if not overlong:
                    buffer += piece
                    if len(buffer) > MAX_LINE_BYTES:
                        overlong = True
                        buffer.clear()
                if end < 0:
                    break
                start = end + 1
                line = self._finish_line(buffer, overlong)
                buffer.clear()
                overlong = False
                if line is not None:
                    yield line
        if buffer or overlong:
            line = self._finish_line(buffer, overlong)
            if line is not None:
                yield line

    def _finish_line(self, raw: bytearray, overlong: bool) -> str | None:
        self._line += 1
        if self._line == 1:
            if raw.startswith(UTF16_BOMS):
                raise CsvFileError(
                    RowError(line=1, column=None, message="the file is UTF-16: send UTF-8")
                )
            if raw.startswith(BOM):
                del raw[: len(BOM)]
        if overlong:
            self._pending.append(
                RowError(
                    line=self._line,
                    column=None,
                    message=f"line longer than {MAX_LINE_BYTES} bytes",
                )
            )
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._pending.append(
                RowError(
                    line=self._line,
                    column=None,
                    message=f"not valid UTF-8 (byte {exc.start + 1} of the line)",
                )
            )
            return None
        if self._record_start is None:
            self._record_start = self._line
        return text

    # --- records ---------------------------------------------------------------------------

    def batches(self) -> Iterator[Batch]:
        records = csv.reader(self._lines(), strict=True)
        header = self._header(records)
        fast = FastRows(header)
        batch = Batch()
        seen: dict[str, int] = {}  # emails of this batch: the database catches the others
        while True:
            self._record_start = None
            try:
                record = next(records)
            except StopIteration:
                break
            except csv.Error as exc:
                batch.errors.append(
                    RowError(line=self._record_start or self._line, column=None, message=str(exc))
                )
                batch.rejected += 1
                continue
            finally:
                if self._pending:
                    batch.errors.extend(self._pending)
                    batch.rejected += len(self._pending)
                    self._pending.clear()
            if not record or record == [""]:
                continue  # a blank line
            line = self._record_start or self._line
            row = self._row(header, fast, record, line, batch)
            if row is not None:
                earlier = seen.get(row.email)
                if earlier is not None:
                    batch.errors.append(
                        RowError(
                            line=line,
                            column="email",
                            message=f"duplicate email (also on line {earlier})",
                        )
                    )
                    batch.rejected += 1
                else:
                    seen[row.email] = line
                    batch.rows.append(row)
            if len(batch.rows) + batch.rejected >= self.batch_size:
                batch.bytes_read = self.bytes_read
                yield batch
                batch, seen = Batch(), {}
        batch.bytes_read = self.bytes_read
        yield batch

    def _header(self, records: Iterator[list[str]]) -> list[str]:
        try:
            first = next(records)
        except StopIteration:
            first = []
        except csv.Error as exc:
            raise CsvFileError(RowError(line=1, column=None, message=str(exc))) from exc
        if self._pending:
            raise CsvFileError(self._pending[0])
        names = [name.strip().lower() for name in first]
        error = _header_error(names)
        if error:
            raise CsvFileError(RowError(line=1, column=None, message=error))
        return names

    def _row(
        self, header: list[str], fast: FastRows, record: list[str], line: int, batch: Batch
    ) -> ParsedRow | None:
        if len(record) != len(header):
            batch.errors.append(
                RowError(
                    line=line,
                    column=None,
                    message=f"expected {len(header)} fields, found {len(record)}",
                )
            )
            batch.rejected += 1
            return None
        row = fast.row(record, line)
        if row is None:  # not plainly valid: the model decides, and words the errors
            checked = model_row(header, record, line)
            if isinstance(checked, list):
                batch.errors.extend(checked)
                batch.rejected += 1
                return None
            row = checked
        return row


def model_row(header: list[str], record: list[str], line: int) -> ParsedRow | list[RowError]:
    """A record (as many fields as the header) as `ImportRow` sees it: the row, or its errors.
    Empty optional values are absent."""
    values: dict[str, str] = {}
    for name, value in zip(header, record, strict=True):
        value = value.strip()
        if value or name in REQUIRED_COLUMNS:
            values[name] = value
    try:
        data = ImportRow.model_validate(values)
    except ValidationError as exc:
        return [
            RowError(
                line=line,
                column=str(error["loc"][0]) if error["loc"] else None,
                message=error["msg"],
            )
            for error in exc.errors(include_url=False, include_input=False)
        ]
    return ParsedRow(
        line=line,
        email=str(data.email),
        name=data.name,
        age=data.age,
        password=data.password,
        balance_minor=to_minor(data.balance) if data.balance is not None else None,
    )
