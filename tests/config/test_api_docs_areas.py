"""The Swagger pages are split by area; together they must document every endpoint of the schema."""

from __future__ import annotations

import json

from config.api_docs import AREAS

OPENAPI = "application/vnd.oai.openapi+json"


def test_every_endpoint_is_in_exactly_one_docs_area(client):
    full = json.loads(client.get("/api/schema/", HTTP_ACCEPT=OPENAPI).content)["paths"]
    seen: dict[str, str] = {}
    for area in AREAS:
        response = client.get(f"/api/schema/{area}/", HTTP_ACCEPT=OPENAPI)
        assert response.status_code == 200
        for path in json.loads(response.content)["paths"]:
            assert path not in seen, f"{path} is in both {seen[path]} and {area}"
            seen[path] = area
    assert set(seen) == set(full)


def test_each_docs_page_links_to_the_others(client):
    page = client.get("/api/docs/billing/")
    assert page.status_code == 200
    schema = json.loads(client.get("/api/schema/billing/", HTTP_ACCEPT=OPENAPI).content)
    assert "[Workflows](/api/docs/workflows/)" in schema["info"]["description"]
    assert all(p.split("/")[3] in ("billing", "credits", "payments") for p in schema["paths"])
