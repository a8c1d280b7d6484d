"""Text out of uploaded bytes: detect the type by content, then extract units (page / section / sheet).

The type comes from the content (magic bytes), never from the name alone: a PDF starts with `%PDF-`,
Office files are ZIPs told apart by their parts, and anything else must decode as text. The name's
extension (or the declared MIME type) must then agree with what the content is, so a `.pdf` that is
really a ZIP, or a `.docx` that is really text, is refused with a clear reason.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from typing import Any

from knowledge.detection import (  # noqa: F401 - re-exported: callers import these from extraction
    CSV,
    DOCX,
    FORMAT_LABELS,
    HTML,
    JSON,
    MD,
    MIME_TYPES,
    PDF,
    PPTX,
    TEXT_KINDS,
    TXT,
    XLSX,
    Extracted,
    ExtractionError,
    Unit,
    as_utf8,
    decode_text,
    limit_setting,
    sniff,
)

# ------------------------------------------------------------------ formats


# pdfium is not thread-safe; ingestion workers are processes, but threads (tests, the web) may share one.
_PDFIUM_LOCK = threading.Lock()


def _pdf(data: bytes) -> tuple[list[Unit], int]:
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise ExtractionError(
                    "The PDF is encrypted (password protected); upload an unprotected copy."
                )
            raise ExtractionError(f"The PDF is corrupt or unreadable ({exc}).")
        try:
            count, limit = len(pdf), limit_setting("KNOWLEDGE_MAX_PAGES", 2000)
            if count > limit:
                raise ExtractionError(f"The PDF has {count} pages; the limit is {limit}.")
            units = []
            for index in range(count):
                page = pdf[index]
                try:
                    textpage = page.get_textpage()
                    units.append(Unit(_clean(textpage.get_text_range()), page=index + 1))
                    textpage.close()
                except pdfium.PdfiumError as exc:
                    raise ExtractionError(f"Page {index + 1} of the PDF cannot be read ({exc}).")
                finally:
                    page.close()
            return units, count
        finally:
            pdf.close()


def _docx(data: bytes) -> tuple[list[Unit], int]:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    sections = _Sections()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = ["\t".join(cell.text.strip() for cell in row.cells) for row in block.rows]
            sections.add("\n".join(rows))
            continue
        style = (block.style.name if block.style is not None else "") or ""
        level = 1 if style == "Title" else _heading_level(style)
        if level:
            sections.heading(level, block.text.strip())
        else:
            sections.add(block.text)
    return sections.finish(), 1


def _heading_level(style: str) -> int:
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0


def _pptx(data: bytes) -> tuple[list[Unit], int]:
    from pptx import Presentation

    deck = Presentation(io.BytesIO(data))
    units = []
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        lines = list(_shape_texts(slide.shapes))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            lines.append(slide.notes_slide.notes_text_frame.text)
        units.append(Unit(_clean("\n".join(lines)), page=number, heading_path=[title] if title else []))
    return units, len(deck.slides)


def _shape_texts(shapes: Any) -> Any:
    for shape in shapes:
        if getattr(shape, "shapes", None) is not None:  # a group
            yield from _shape_texts(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                yield "\t".join(cell.text.strip() for cell in row.cells)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield shape.text_frame.text


def _xlsx(data: bytes) -> tuple[list[Unit], int]:
    import openpyxl

    max_rows = limit_setting("KNOWLEDGE_MAX_SHEET_ROWS", 10_000)
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        units = []
        for number, sheet in enumerate(workbook.worksheets, start=1):
            lines = []
            for row in sheet.iter_rows(values_only=True):
                line = "\t".join("" if value is None else str(value) for value in row).rstrip("\t")
                if line.strip():
                    lines.append(line)
                if len(lines) >= max_rows:
                    break
            units.append(Unit("\n".join(lines), page=number, heading_path=[sheet.title]))
        return units, len(workbook.worksheets)
    finally:
        workbook.close()


def _csv(text: str) -> list[Unit]:
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    max_rows = limit_setting("KNOWLEDGE_MAX_SHEET_ROWS", 10_000)
    lines = []
    for row in csv.reader(io.StringIO(text), dialect):
        if any(cell.strip() for cell in row):
            lines.append("\t".join(cell.strip() for cell in row))
        if len(lines) >= max_rows:
            break
    return [Unit("\n".join(lines))]


_HEADING_MARK = "\x00H"


def _html(text: str) -> list[Unit]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "svg", "head"]):
        tag.decompose()
    for tag in soup.find_all(re.compile(r"^h[1-6]$")):
        tag.replace_with(f"\n{_HEADING_MARK}{tag.name[1]}{tag.get_text(' ', strip=True)}\n")
    sections = _Sections()
    for line in soup.get_text("\n").splitlines():
        line = " ".join(line.split())
        if line.startswith(_HEADING_MARK):
            sections.heading(int(line[2]), line[3:].strip())
        elif line:
            sections.add(line)
    return sections.finish()


_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def markdown_sections(text: str) -> list[Unit]:
    """Split Markdown at its ATX (`#`) headings, outside fenced code; each section keeps its
    heading line and knows its heading path."""
    sections = _Sections()
    fence = None
    for line in text.splitlines():
        fence_match = _FENCE.match(line)
        if fence_match:
            fence = None if fence == fence_match.group(1) else (fence or fence_match.group(1))
        match = None if fence else _ATX.match(line)
        if match:
            sections.heading(len(match.group(1)), match.group(2).strip(), line=line)
        else:
            sections.add(line)
    return sections.finish()


class _Sections:
    """Collects text under the current heading path; each heading starts a new unit."""

    def __init__(self) -> None:
        self.path: list[tuple[int, str]] = []
        self.parts: list[str] = []
        self.units: list[Unit] = []

    def heading(self, level: int, title: str, line: str | None = None) -> None:
        self._flush()
        self.path = [(lvl, t) for lvl, t in self.path if lvl < level] + [(level, title)]
        self.parts = [line if line is not None else title]

    def add(self, text: str) -> None:
        self.parts.append(text)

    def finish(self) -> list[Unit]:
        self._flush()
        return self.units

    def _flush(self) -> None:
        text = _clean("\n".join(self.parts))
        if text:
            self.units.append(Unit(text, heading_path=[t for _lvl, t in self.path]))
        self.parts = []


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ------------------------------------------------------------------ entry point


def _text_units(kind: str, data: bytes, declared_mime: str | None) -> list[Unit]:
    text = decode_text(data, declared_mime) or ""
    if kind == JSON:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError as exc:
            raise ExtractionError(f"The JSON is not valid: {exc}.")
    readers = {CSV: _csv, HTML: _html, MD: markdown_sections}
    return readers[kind](text) if kind in readers else [Unit(_clean(text))]


def extract(data: bytes, filename: str, declared_mime: str | None) -> Extracted:
    """Units of text with their page and heading path; ExtractionError says why when there are none."""
    kind = sniff(data, filename, declared_mime)
    binary_readers = {PDF: _pdf, DOCX: _docx, PPTX: _pptx, XLSX: _xlsx}
    try:
        units, pages = (
            binary_readers[kind](data)
            if kind in binary_readers
            else (_text_units(kind, data, declared_mime), 1)
        )
    except ExtractionError:
        raise
    except Exception as exc:  # a damaged Office file fails deep inside its library
        label = FORMAT_LABELS.get(kind, kind.upper())
        raise ExtractionError(f"The {label} file cannot be read ({type(exc).__name__}: {exc}).")
    units = [unit for unit in units if unit.text.strip()]
    if not units:
        raise ExtractionError("no text found")
    return Extracted(text_units=units, pages=pages, mime=MIME_TYPES[kind])
