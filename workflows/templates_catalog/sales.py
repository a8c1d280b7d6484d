"""Sales templates."""

from __future__ import annotations

from workflows.templates_catalog.spec import TemplateSpec, agent, edges, node

TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        "cold-email-review-loop",
        "Cold email with a reviewer loop",
        "sales",
        "advanced",
        "4.6",
        "A sales rep drafts a cold email and a reviewer checks it; the rep revises on the feedback "
        "until the reviewer answers PASS, for at most 3 rounds.",
        {
            "nodes": [
                node("start", "trigger", "Prospect", 40, 200, kind="manual"),
                agent(
                    "write",
                    "First draft",
                    240,
                    200,
                    "sales",
                    "Write a cold email (under 120 words) to this prospect:\n{{ input.text }}",
                ),
                node(
                    "keep",
                    "set_variable",
                    "Keep the draft",
                    440,
                    200,
                    variables={"draft": "{{ last }}", "review": "", "rounds": "{{ 0 }}"},
                ),
                node(
                    "rounds",
                    "loop",
                    "Up to 3 review rounds",
                    640,
                    200,
                    mode="while",
                    condition='not startswith(upper(strip(vars.review)), "PASS")',
                    max_iterations=3,
                ),
                agent(
                    "review",
                    "Review",
                    860,
                    80,
                    "reviewer",
                    "Review this cold email for {{ input.text }}:\n{{ vars.draft }}",
                ),
                node(
                    "note",
                    "set_variable",
                    "Note the review",
                    1060,
                    80,
                    variables={"review": "{{ last }}", "rounds": "{{ vars.rounds + 1 }}"},
                ),
                node(
                    "passed",
                    "condition",
                    "PASS?",
                    1260,
                    80,
                    expression='startswith(upper(strip(vars.review)), "PASS")',
                ),
                agent(
                    "improve",
                    "Revise",
                    1260,
                    260,
                    "sales",
                    "Improve the email based on the feedback.\nEmail: {{ vars.draft }}\nFeedback: {{ vars.review }}",
                ),
                node(
                    "redraft",
                    "set_variable",
                    "Keep the revision",
                    1040,
                    300,
                    variables={"draft": "{{ last }}"},
                ),
                node(
                    "email",
                    "end",
                    "Final email",
                    860,
                    400,
                    output={
                        "email": "{{ vars.draft }}",
                        "review": "{{ vars.review }}",
                        "rounds": "{{ vars.rounds }}",
                    },
                ),
            ],
            "edges": edges(
                "start>write>keep>rounds",
                ("rounds", "body", "review"),
                "review>note>passed",
                ("passed", "true", "rounds"),
                ("passed", "false", "improve"),
                "improve>redraft>rounds",
                ("rounds", "done", "email"),
            ),
        },
        {"text": "Dana Ruiz, CTO at a 50-person logistics startup that still plans routes in spreadsheets"},
    ),
    TemplateSpec(
        "lead-qualification",
        "Inbound lead qualification",
        "sales",
        "beginner",
        "4.5",
        "Leads from your website form arrive on a signed webhook. Companies with 50 or more employees "
        "get a personal reply from a sales rep; smaller ones get a friendly nurture email.",
        {
            "nodes": [
                node("lead", "trigger", "New lead", 40, 200, kind="webhook"),
                node(
                    "normalize",
                    "transform",
                    "Clean up the lead",
                    260,
                    200,
                    mapping={
                        "name": "{{ strip(default(input.name, 'there')) }}",
                        "company": "{{ strip(default(input.company, 'your company')) }}",
                        "employees": "{{ int(default(input.employees, 0)) }}",
                        "message": "{{ default(input.message, input.text) }}",
                    },
                ),
                node(
                    "fit",
                    "condition",
                    "50+ employees?",
                    480,
                    200,
                    expression="nodes.normalize.output.employees >= 50",
                ),
                agent(
                    "outreach",
                    "Personal reply",
                    700,
                    100,
                    "sales",
                    "Write a personal reply to {{ nodes.normalize.output.name }} at "
                    "{{ nodes.normalize.output.company }} proposing a 20-minute call. "
                    "Their message: {{ nodes.normalize.output.message }}",
                ),
                agent(
                    "nurture",
                    "Nurture email",
                    700,
                    300,
                    "marketing",
                    "Write a short, friendly nurture email to {{ nodes.normalize.output.name }} with two "
                    "helpful resources. Their message: {{ nodes.normalize.output.message }}",
                ),
                node(
                    "result",
                    "end",
                    "Result",
                    920,
                    200,
                    output={"qualified": "{{ nodes.fit.port == 'true' }}", "email": "{{ last }}"},
                ),
            ],
            "edges": edges(
                "lead>normalize>fit",
                ("fit", "true", "outreach"),
                ("fit", "false", "nurture"),
                "outreach>result",
                "nurture>result",
            ),
        },
        {"name": "Sam Lee", "company": "Northwind", "employees": 120, "message": "Can we see a demo?"},
    ),
)
