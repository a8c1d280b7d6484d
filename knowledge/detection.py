"""Type detection by content: magic bytes for PDF, the parts of an Office ZIP, else text that decodes.

The name's extension (or declared MIME type) must agree with the content, so a `.pdf` that is really a
ZIP is refused with a clear reason. Zip-bomb limits are checked here, before anything is unpacked.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import filetype
from django.conf import settings

PDF, DOCX, PPTX, XLSX = "pdf", "docx", "pptx", "xlsx"
CSV, HTML, MD, TXT, JSON = "csv", "html", "md", "txt", "json"
TEXT_KINDS = (CSV, HTML, MD, TXT, JSON)

MIME_TYPES = {
    PDF: "application/pdf",
    DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    PPTX: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    CSV: "text/csv",
    HTML: "text/html",
    MD: "text/markdown",
    TXT: "text/plain",
    JSON: "application/json",
}
_KIND_BY_MIME = {mime: kind for kind, mime in MIME_TYPES.items()} | {
    "application/xhtml+xml": HTML,
    "text/x-markdown": MD,
    "application/csv": CSV,
    "text/json": JSON,
}
_KIND_BY_EXT = {
    ".pdf": PDF, ".docx": DOCX, ".pptx": PPTX, ".xlsx": XLSX, ".csv": CSV, ".html": HTML, ".htm": HTML,
    ".md": MD, ".markdown": MD, ".txt": TXT, ".text": TXT, ".json": JSON,
}  # fmt: skip
FORMAT_LABELS = {PDF: "PDF", DOCX: "Word (DOCX)", PPTX: "PowerPoint (PPTX)", XLSX: "Excel (XLSX)"}
# The main part of each Office format, as named in [Content_Types].xml and by its path.
_OFFICE_PARTS = (
    (DOCX, "word/document.xml", "wordprocessingml.document.main+xml"),
    (PPTX, "ppt/presentation.xml", "presentationml.presentation.main+xml"),
    (XLSX, "xl/workbook.xml", "spreadsheetml.sheet.main+xml"),
)


class ExtractionError(Exception):
    """The bytes cannot be turned into text; the message says why, for people."""


@dataclass
class Unit:
    text: str
    page: int | None = None
    heading_path: list[str] = field(default_factory=list)


@dataclass
class Extracted:
    text_units: list[Unit]
    pages: int
    mime: str


def limit_setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


# ------------------------------------------------------------------ detection


def _office_kind(data: bytes) -> str:
    """Which Office format a ZIP holds, after the zip-bomb checks (sizes come from the central
    directory; zipfile stops decompressing a member at its declared size, so they bound the work)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ExtractionError(f"The file looks like a ZIP archive but cannot be opened: {exc}")
    with archive:
        members = archive.infolist()
        if len(members) > limit_setting("KNOWLEDGE_ZIP_MAX_MEMBERS", 10_000):
            raise ExtractionError(f"The archive has too many parts ({len(members)}); refusing to open it.")
        total = sum(m.file_size for m in members)
        max_total = limit_setting("KNOWLEDGE_ZIP_MAX_UNCOMPRESSED_BYTES", 200 * 1024 * 1024)
        if total > max_total:
            raise ExtractionError(f"The archive unpacks to {total} bytes, over the {max_total} byte limit.")
        ratio = total / max(len(data), 1)
        # Small documents may compress very well; only a large expansion is a bomb.
        if total > 1024 * 1024 and ratio > limit_setting("KNOWLEDGE_ZIP_MAX_RATIO", 100):
            raise ExtractionError(
                f"The archive expands {ratio:.0f}x when unpacked; refusing a possible zip bomb."
            )
        names = {m.filename for m in members}
        content_types = ""
        if "[Content_Types].xml" in names:
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size <= 1024 * 1024:
                content_types = archive.read(info).decode("utf-8", "replace")
    for kind, part, content_type in _OFFICE_PARTS:
        if part in names and content_type in content_types:
            return kind
    raise ExtractionError("Unsupported file type: a ZIP archive that is not a DOCX, PPTX or XLSX document.")


def decode_text(data: bytes, declared_mime: str | None = None) -> str | None:
    """The text, if the bytes are UTF-8, UTF-16 with a byte-order mark, or in the charset the
    declared type names (a web page in latin-1), and not binary."""
    encodings = ["utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"]
    if match := re.search(r"charset=[\"']?([\w.:-]+)", declared_mime or "", re.IGNORECASE):
        encodings.append(match.group(1))
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\t\n\r\f")
        if "\x00" in text or controls > 80:
            return None
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return None


def as_utf8(data: bytes, declared_mime: str | None) -> bytes:
    """Text in a declared charset, re-encoded as UTF-8 so a stored copy reads back without it."""
    text = decode_text(data, declared_mime)
    return text.encode() if text is not None else data


def _content_kind(data: bytes, declared_mime: str | None) -> str:
    if b"%PDF-" in data[:1024]:
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _office_kind(data)
    guess = filetype.guess(data[:8192])
    if guess is not None:
        raise ExtractionError(f"Unsupported file type: {guess.mime}.")
    if decode_text(data, declared_mime) is None:
        raise ExtractionError("Unsupported file type: binary content that is not PDF, DOCX, PPTX or XLSX.")
    return TXT


def _declared_kind(filename: str, declared_mime: str | None) -> tuple[str | None, str]:
    """The kind the name (or else the declared MIME type) claims, and how to describe the claim."""
    ext = PurePosixPath(filename.lower()).suffix
    if ext in _KIND_BY_EXT:
        return _KIND_BY_EXT[ext], f"named {ext}"
    mime = (declared_mime or "").split(";")[0].strip().lower()
    if mime in _KIND_BY_MIME:
        return _KIND_BY_MIME[mime], f"declared as {mime}"
    if ext and filetype.get_type(ext=ext.lstrip(".")) is not None:
        return "binary", f"named {ext}"  # e.g. .png, .zip: a known binary type we do not read
    return None, ""


def _text_kind(text: str) -> str:
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype html", "<html")):
        return HTML
    if head.startswith(("{", "[")):
        try:
            json.loads(text)
            return JSON
        except ValueError:
            pass
    return TXT


def sniff(data: bytes, filename: str, declared_mime: str | None = None) -> str:
    """The kind of file (pdf, docx, ..., txt) by content; ExtractionError when unsupported or when
    the name / declared type disagrees with the content."""
    content = _content_kind(data, declared_mime)
    declared, claim = _declared_kind(filename, declared_mime)
    if content != TXT:
        if declared is not None and declared != content:
            raise ExtractionError(f"The file is {claim} but its content is {FORMAT_LABELS[content]}.")
        return content
    if declared in TEXT_KINDS:
        return declared
    if declared is not None:
        what = FORMAT_LABELS.get(declared, "a binary file")
        raise ExtractionError(f"The file is {claim} but its content is plain text, not {what}.")
    return _text_kind(decode_text(data, declared_mime) or "")
