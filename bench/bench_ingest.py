"""Ingestion throughput in pages/s on one core: the whole pipeline (`knowledge.ingest.ingest`: read
from storage, extract, chunk, embed, store) run synchronously in this single process, over a
generated corpus of PDFs (fpdf2) and Markdown files, at least 200 pages.

Two runs: a knowledge base without embeddings, and one embedding through the fake OpenAI-compatible
endpoint (its own process, `bench.fake_llm.FakeLLMProcess`). Reference measured in the same run: text
extraction alone (`knowledge.extraction.extract`) over the same files. Target: >= 50 pages/s per core
without embedding.

Uses its own database (`benchingest`) and a temporary media folder.  Run: python -m bench.bench_ingest
[--pdfs 25] [--pages-per-pdf 10] [--markdown 10]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from typing import Any

from bench.bench_search import setup_django

_VOCABULARY = (
    "account agreement annual approval audit balance benefit budget claim client compliance contract cost "
    "customer deadline delivery department deposit employee equipment expense facility finance guideline "
    "holiday insurance inventory invoice leave liability maintenance manager meeting office onboarding order "
    "payment payroll period policy procedure process project purchase quality receipt refund renewal report "
    "request review risk safety schedule security service shipment staff supplier support system tax team "
    "training travel vendor warranty workflow"
)
WORDS = _VOCABULARY.split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))


def make_pdf(rng: random.Random, pages: int, title: str) -> bytes:
    """About 350 words per page, a heading and a few paragraphs each."""
    from fpdf import FPDF

    pdf = FPDF()
    for page in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("helvetica", "B", size=14)
        pdf.cell(0, 10, text=f"{title}, section {page}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=10)
        for _ in range(4):
            pdf.multi_cell(0, 5, text=_paragraph(rng))
            pdf.ln(2)
    return bytes(pdf.output())


def make_markdown(rng: random.Random, sections: int, title: str) -> bytes:
    parts = [f"# {title}\n"]
    for n in range(1, sections + 1):
        parts.append(f"\n## Section {n}\n\n{_paragraph(rng)}\n\n{_paragraph(rng)}\n")
    return "".join(parts).encode()


def corpus(pdfs: int, pages_per_pdf: int, markdown: int) -> list[tuple[str, bytes]]:
    rng = random.Random(11)  # noqa: S311 - benchmark data
    files = [(f"handbook-{i}.pdf", make_pdf(rng, pages_per_pdf, f"Handbook {i}")) for i in range(pdfs)]
    files += [(f"notes-{i}.md", make_markdown(rng, 12, f"Notes {i}")) for i in range(markdown)]
    return files


def _reference(files: list[tuple[str, bytes]]) -> tuple[float, int]:
    from knowledge.extraction import extract

    started = time.perf_counter()
    pages = sum(extract(data, name, None).pages for name, data in files)
    return time.perf_counter() - started, pages


def _ingest_all(org: Any, files: list[tuple[str, bytes]], **kb_fields: Any) -> dict[str, Any]:
    import knowledge.ingest as ingest
    from knowledge.models import Document, KnowledgeBase

    queued: list[int] = []
    # Documents are added through the service, but the pipeline runs here, not on a Celery worker.
    ingest._queue = queued.append  # type: ignore[assignment]
    kb = KnowledgeBase.objects.create(organization=org, name=f"ingest {time.time_ns()}", **kb_fields)
    for name, data in files:
        ingest.document_add_file(kb=kb, by=None, filename=name, data=data)
    wall, cpu = time.perf_counter(), time.process_time()
    outcomes = [ingest.ingest(document_id) for document_id in queued]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    docs = Document.objects.filter(knowledge_base=kb)
    failed = [d.error for d in docs if d.status != Document.Status.READY]
    return {
        "wall": wall,
        "cpu": cpu,
        "pages": sum(d.pages for d in docs),
        "chunks": sum(d.chunk_count for d in docs),
        "tokens": sum(d.embedding_tokens for d in docs),
        "ready": outcomes.count("ready"),
        "failed": failed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--pdfs", type=int, default=25)
    parser.add_argument("--pages-per-pdf", type=int, default=10)
    parser.add_argument("--markdown", type=int, default=10)
    args = parser.parse_args(argv)

    media = tempfile.TemporaryDirectory(prefix="bench-ingest-")
    os.environ["MEDIA_ROOT"] = media.name
    from bench.fake_llm import FakeLLMProcess

    llm = FakeLLMProcess().start()
    os.environ.update({"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": llm.base_url})
    try:
        setup_django("benchingest")
        from accounts.models import Organization

        files = corpus(args.pdfs, args.pages_per_pdf, args.markdown)
        print(f"corpus: {len(files)} files, {sum(len(d) for _, d in files) / 1e6:.1f} MB")
        Organization.objects.filter(slug="bench-ingest").delete()
        org = Organization.objects.create(name="Bench ingest", slug="bench-ingest")
        ref_seconds, ref_pages = _reference(files)
        runs = [
            ("no embeddings (provider none)", _ingest_all(org, files, embedding_provider="none")),
            (
                "fake OpenAI embeddings, 384 dims",
                _ingest_all(
                    org,
                    files,
                    embedding_provider="openai",
                    embedding_model="text-embedding-3-small",
                    embedding_dim=384,
                ),
            ),
        ]
        _print(runs, ref_seconds=ref_seconds, ref_pages=ref_pages)
        org.delete()
    finally:
        llm.stop()
        media.cleanup()
    return 0


def _print(runs: list[tuple[str, dict[str, Any]]], *, ref_seconds: float, ref_pages: int) -> None:
    print("\ningestion, one process (one core), documents one after another")
    header = f"{'run':<36}{'pages':>7}{'chunks':>8}{'wall s':>9}{'pages/s':>9}{'pages/cpu-s':>13}{'vs extract':>12}"
    print(header)
    print("-" * len(header))
    ref_rate = ref_pages / ref_seconds
    print(
        f"{'reference: extraction only':<36}{ref_pages:>7}{'':>8}{ref_seconds:>9.2f}{ref_rate:>9.1f}{'':>13}{'1.00x':>12}"
    )
    for name, r in runs:
        rate = r["pages"] / r["wall"]
        print(
            f"{name:<36}{r['pages']:>7}{r['chunks']:>8}{r['wall']:>9.2f}{rate:>9.1f}"
            f"{r['pages'] / max(r['cpu'], 1e-9):>13.1f}{rate / ref_rate:>11.2f}x"
        )
        if r["failed"]:
            print(f"  {len(r['failed'])} documents failed, e.g. {r['failed'][0]}")
        if r["tokens"]:
            print(f"  {r['tokens']} embedding tokens recorded")
    print(
        "\npages/s = pages / wall time of ingest() over all documents in this one process; pages/cpu-s counts "
        "this process's CPU only (PostgreSQL and the fake server run elsewhere). Target: >= 50 pages/s per "
        "core without embedding."
    )


if __name__ == "__main__":
    sys.exit(main())
