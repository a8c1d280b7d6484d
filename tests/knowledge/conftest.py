"""Knowledge fixtures: uploads land in a temporary media folder; files are built in the tests.

Embeddings come from the fake OpenAI-compatible server (`llm`, 384-dim deterministic vectors).
"""

from __future__ import annotations

import io

import pytest

from knowledge.models import KnowledgeBase
from tests.agents.conftest import llm  # noqa: F401


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Every knowledge test stores its files under its own folder, never in .data/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def make_kb(acme, alice):
    def make(org=None, **fields):
        values = {
            "name": "Handbook",
            "embedding_provider": KnowledgeBase.EmbeddingProvider.NONE,
            "embedding_model": "",
            "embedding_dim": 384,
            "chunk_strategy": KnowledgeBase.ChunkStrategy.RECURSIVE,
            "chunk_size": 200,
            "chunk_overlap": 20,
        }
        values.update(fields)
        return KnowledgeBase.objects.create(organization=org or acme, created_by=alice, **values)

    return make


@pytest.fixture
def kb(make_kb):
    """Keyword-only: ingestion needs no embedding provider."""
    return make_kb()


@pytest.fixture
def embedded_kb(make_kb, llm):  # noqa: F811
    """OpenAI embeddings from the fake server, 384 dimensions."""
    return make_kb(
        name="Embedded",
        embedding_provider=KnowledgeBase.EmbeddingProvider.OPENAI,
        embedding_model="text-embedding-3-small",
        embedding_dim=384,
    )


# ------------------------------------------------------------------ file builders


def pdf_bytes(pages: list[str], *, user_password: str | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text=text)
    if user_password:
        pdf.set_encryption(owner_password="owner-" + user_password, user_password=user_password)
    return bytes(pdf.output())


def docx_bytes(blocks: list[tuple[int, str]], *, table: list[list[str]] | None = None) -> bytes:
    """`blocks`: (heading level, text); level 0 is a plain paragraph."""
    import docx

    document = docx.Document()
    for level, text in blocks:
        if level:
            document.add_heading(text, level=level)
        else:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx_bytes(slides: list[tuple[str, str]]) -> bytes:
    from pptx import Presentation

    deck = Presentation()
    for title, body in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
