"""Every format extracts; the type comes from the content; bad files fail with a reason."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from knowledge.extraction import MIME_TYPES, ExtractionError, extract, sniff
from tests.knowledge.conftest import docx_bytes, pdf_bytes, pptx_bytes, xlsx_bytes


def test_pdf_extracts_text_per_page():
    result = extract(pdf_bytes(["Refund policy applies.", "Shipping takes two days."]), "terms.pdf", None)

    assert result.mime == "application/pdf"
    assert result.pages == 2
    assert [(u.page, u.text) for u in result.text_units] == [
        (1, "Refund policy applies."),
        (2, "Shipping takes two days."),
    ]


def test_encrypted_pdf_fails_with_a_reason():
    with pytest.raises(ExtractionError, match="encrypted"):
        extract(pdf_bytes(["secret"], user_password="pw"), "locked.pdf", None)


def test_truncated_pdf_fails_as_corrupt():
    with pytest.raises(ExtractionError, match="corrupt"):
        extract(pdf_bytes(["whole"])[:300], "broken.pdf", None)


def test_blank_pdf_has_no_text():
    with pytest.raises(ExtractionError, match="^no text found$"):
        extract(pdf_bytes([""]), "blank.pdf", None)


def test_pdf_over_the_page_limit_is_refused(settings):
    settings.KNOWLEDGE_MAX_PAGES = 2

    with pytest.raises(ExtractionError, match="3 pages; the limit is 2"):
        extract(pdf_bytes(["a", "b", "c"]), "long.pdf", None)


def test_docx_headings_become_the_heading_path():
    data = docx_bytes(
        [(1, "Policies"), (0, "General rules."), (2, "Refunds"), (0, "Within 30 days."), (1, "Support")],
        table=[["Plan", "Hours"], ["Pro", "24/7"]],
    )

    result = extract(data, "handbook.docx", None)

    assert result.mime == MIME_TYPES["docx"]
    paths = [(u.heading_path, u.text) for u in result.text_units]
    assert paths == [
        (["Policies"], "Policies\nGeneral rules."),
        (["Policies", "Refunds"], "Refunds\nWithin 30 days."),
        (["Support"], "Support\nPlan\tHours\nPro\t24/7"),
    ]


def test_pptx_slide_is_a_page_with_its_title():
    result = extract(pptx_bytes([("Roadmap", "Ship search"), ("Risks", "Latency")]), "deck.pptx", None)

    assert result.pages == 2
    assert [(u.page, u.heading_path, u.text) for u in result.text_units] == [
        (1, ["Roadmap"], "Roadmap\nShip search"),
        (2, ["Risks"], "Risks\nLatency"),
    ]


def test_xlsx_gives_one_unit_per_sheet_with_tab_separated_rows():
    data = xlsx_bytes({"Prices": [["item", "price"], ["tea", 3.5], [None, None]], "Staff": [["Ada"]]})

    result = extract(data, "book.xlsx", None)

    assert [(u.heading_path, u.text) for u in result.text_units] == [
        (["Prices"], "item\tprice\ntea\t3.5"),
        (["Staff"], "Ada"),
    ]


def test_xlsx_rows_are_capped(settings):
    settings.KNOWLEDGE_MAX_SHEET_ROWS = 3

    result = extract(xlsx_bytes({"Big": [[i] for i in range(10)]}), "big.xlsx", None)

    assert result.text_units[0].text == "0\n1\n2"


def test_csv_rows_become_lines():
    result = extract(b"name,city\nAda,London\nLinus,Helsinki\n", "people.csv", None)

    assert result.mime == "text/csv"
    assert result.text_units[0].text == "name\tcity\nAda\tLondon\nLinus\tHelsinki"


def test_html_drops_scripts_and_keeps_headings():
    page = (
        b"<!doctype html><html><head><title>t</title><script>alert(1)</script></head><body>"
        b"<h1>Guide</h1><p>Intro text.</p><h2>Install</h2><p>Run make.</p><style>p{}</style></body></html>"
    )

    result = extract(page, "guide.html", None)

    assert [(u.heading_path, u.text) for u in result.text_units] == [
        (["Guide"], "Guide\nIntro text."),
        (["Guide", "Install"], "Install\nRun make."),
    ]


def test_markdown_sections_ignore_hashes_in_code_fences():
    text = "Preface.\n\n# One\nAlpha.\n```\n# not a heading\n```\n## Two\nBeta.\n# Three\nGamma.\n"

    result = extract(text.encode(), "notes.md", None)

    assert [u.heading_path for u in result.text_units] == [[], ["One"], ["One", "Two"], ["Three"]]
    assert "# not a heading" in result.text_units[1].text


def test_txt_is_one_unit_and_utf16_with_bom_decodes():
    assert extract("héllo wörld".encode(), "a.txt", None).text_units[0].text == "héllo wörld"
    assert extract("hello".encode("utf-16"), "b.txt", None).text_units[0].text == "hello"


def test_json_is_pretty_printed():
    result = extract(b'{"name":"Ada","langs":["en","fr"]}', "person.json", None)

    assert result.mime == "application/json"
    assert json.loads(result.text_units[0].text) == {"name": "Ada", "langs": ["en", "fr"]}
    assert '\n  "name": "Ada"' in result.text_units[0].text


def test_invalid_json_fails_with_a_reason():
    with pytest.raises(ExtractionError, match="JSON is not valid"):
        extract(b"{nope", "x.json", None)


def test_whitespace_only_text_has_no_text():
    with pytest.raises(ExtractionError, match="^no text found$"):
        extract(b"  \n\n \t", "empty.txt", None)


# ------------------------------------------------------------------ detection


def test_type_comes_from_content_not_the_name():
    assert sniff(pdf_bytes(["x"]), "upload", None) == "pdf"
    assert sniff(docx_bytes([(0, "x")]), "upload.bin", None) == "docx"
    assert sniff(pptx_bytes([("t", "b")]), "upload", None) == "pptx"
    assert sniff(xlsx_bytes({"s": [[1]]}), "upload", None) == "xlsx"
    assert sniff(b"<!DOCTYPE html><p>x</p>", "page", None) == "html"
    assert sniff(b"plain words", "page", "text/html; charset=utf-8") == "html"
    assert sniff(b"[1, 2]", "data", None) == "json"
    assert sniff(b"just words", "notes", None) == "txt"


@pytest.mark.parametrize(
    ("data", "filename", "declared", "message"),
    [
        (docx_bytes([(0, "x")]), "report.pdf", None, "named .pdf but its content is Word"),
        (pdf_bytes(["x"]), "slides.pptx", None, "named .pptx but its content is PDF"),
        (b"plain text, not a PDF", "paper.pdf", None, "named .pdf but its content is plain text"),
        (pdf_bytes(["x"]), "download", "text/html", "declared as text/html but its content is PDF"),
        (b"hello", "photo.png", None, "named .png but its content is plain text"),
    ],
)
def test_a_mismatch_between_name_and_content_is_refused(data, filename, declared, message):
    with pytest.raises(ExtractionError, match=message):
        sniff(data, filename, declared)


def test_unsupported_binary_types_are_refused():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    with pytest.raises(ExtractionError, match="Unsupported file type: image/png"):
        sniff(png, "picture.png", None)
    with pytest.raises(ExtractionError, match="binary content"):
        sniff(bytes(range(256)) * 4, "blob.dat", None)


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_a_plain_zip_is_not_an_office_file():
    with pytest.raises(ExtractionError, match="ZIP archive that is not a DOCX, PPTX or XLSX"):
        sniff(_zip({"readme.txt": b"hi"}), "archive.docx", None)


def test_zip_bomb_is_refused_before_opening():
    types = b'<Types><Override ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    bomb = _zip({"[Content_Types].xml": types, "word/document.xml": b"\0" * (20 * 1024 * 1024)})
    assert len(bomb) < 100 * 1024

    with pytest.raises(ExtractionError, match="zip bomb"):
        extract(bomb, "innocent.docx", None)


def test_office_file_unpacking_past_the_cap_is_refused(settings):
    settings.KNOWLEDGE_ZIP_MAX_UNCOMPRESSED_BYTES = 10_000

    with pytest.raises(ExtractionError, match="over the 10000 byte limit"):
        extract(docx_bytes([(0, "x")]), "doc.docx", None)


def test_office_file_with_too_many_parts_is_refused(settings):
    settings.KNOWLEDGE_ZIP_MAX_MEMBERS = 5

    with pytest.raises(ExtractionError, match="too many parts"):
        extract(docx_bytes([(0, "x")]), "doc.docx", None)


def test_a_declared_charset_decodes_legacy_text():
    data = "<html><body><p>Café crème</p></body></html>".encode("latin-1")

    assert extract(data, "page", "text/html; charset=ISO-8859-1").text_units[0].text == "Café crème"
    with pytest.raises(ExtractionError, match="binary content"):
        sniff(data, "page.html", None)
