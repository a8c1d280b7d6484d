"""The search playground, and the passage (chunk) a citation chip opens."""

from __future__ import annotations

import logging
from typing import Any

from django.http import Http404
from django.template.response import TemplateResponse

from accounts.decorators import org_role_required
from accounts.types import AuthedHttpRequest
from knowledge.embeddings import EmbeddingError
from knowledge.forms import SearchForm
from knowledge.models import Chunk, KnowledgeBase
from knowledge.search import SearchError, search

logger = logging.getLogger(__name__)


@org_role_required()
def playground(request: AuthedHttpRequest) -> TemplateResponse:
    """Query, mode and knowledge bases in the URL (a GET form), so a search can be shared and reloaded."""
    form = SearchForm(request.GET or None, org=request.org)
    kbs = list(KnowledgeBase.objects.for_org(request.org).order_by("name"))
    context: dict[str, Any] = {"form": form, "kbs": kbs, "hits": None, "error": ""}
    if form.is_bound and form.is_valid() and form.cleaned_data["q"].strip():
        data = form.cleaned_data
        mode = data["mode"] or "hybrid"
        chosen = [kb for kb in kbs if kb.pk in set(data["kb"])] or kbs
        context.update(mode=mode, chosen=chosen, keyword_only=[kb for kb in chosen if not kb.has_embeddings])
        try:
            context["hits"] = search(
                org=request.org,
                query=data["q"],
                knowledge_base_ids=[kb.pk for kb in chosen],
                top_k=data["top_k"] or 5,
                mode=mode,
            )
        except (EmbeddingError, SearchError) as exc:
            context["error"] = str(exc)
    elif form.is_bound and form.errors:
        context["error"] = "; ".join(
            f"{name}: {' '.join(map(str, errors))}" for name, errors in form.errors.items()
        )
    else:
        # Nothing asked yet (perhaps a knowledge base picked by a link): show the defaults.
        picked = [v for v in request.GET.getlist("kb") if v.isdigit()]
        initial = {"mode": request.GET.get("mode") or "hybrid", "top_k": 5, "kb": picked}
        context["form"] = SearchForm(initial=initial, org=request.org)
    template = "knowledge/search.html#results" if request.htmx else "knowledge/search.html"
    return TemplateResponse(request, template, context)


@org_role_required()
def chunk(request: AuthedHttpRequest, chunk_id: int) -> TemplateResponse:
    """One passage with its document and page. A citation chip loads the `passage` partial inline."""
    found = (
        Chunk.objects.for_org(request.org)
        .select_related("document", "knowledge_base")
        .filter(pk=chunk_id)
        .first()
    )
    if found is None:
        raise Http404("No such passage (the document may have been deleted or re-indexed).")
    template = "knowledge/chunk.html#passage" if request.htmx else "knowledge/chunk.html"
    return TemplateResponse(request, template, {"chunk": found, "page": (found.metadata or {}).get("page")})
