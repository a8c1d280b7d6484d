"""Operations templates."""

from __future__ import annotations

from workflows.templates_catalog.spec import TemplateSpec, agent, edges, node

TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        "incident-summary",
        "Incident summary with retry and fallback",
        "operations",
        "intermediate",
        "4.4",
        "Alerts arrive on a webhook; an analyst summarizes the incident, retrying with backoff and "
        "falling back to a second agent if it keeps failing. Critical incidents are routed to the "
        "incident channel, the rest to the ops log; if both agents fail, the raw alert is passed on.",
        {
            "nodes": [
                node("alert", "trigger", "Alert", 40, 200, kind="webhook"),
                {
                    **agent(
                        "summarize",
                        "Summarize",
                        260,
                        200,
                        "analyst",
                        "Summarize this incident for the on-call channel in three bullet points "
                        "(impact, suspected cause, next step):\n{{ input.text }}",
                        fallback_agent_template="assistant",
                    ),
                    "retry": {"max_attempts": 3, "backoff_seconds": 2},
                    "timeout_seconds": 120,
                },
                node(
                    "severity",
                    "switch",
                    "Severity",
                    480,
                    200,
                    expression="lower(default(input.severity, 'medium'))",
                    cases=["critical", "high"],
                ),
                node(
                    "page",
                    "transform",
                    "Incident channel",
                    700,
                    80,
                    mapping={
                        "channel": "#incidents",
                        "urgent": "{{ true }}",
                        "text": "{{ nodes.summarize.output }}",
                    },
                ),
                node(
                    "log",
                    "transform",
                    "Ops log",
                    700,
                    240,
                    mapping={
                        "channel": "#ops-log",
                        "urgent": "{{ false }}",
                        "text": "{{ nodes.summarize.output }}",
                    },
                ),
                node(
                    "raw",
                    "transform",
                    "Raw alert",
                    700,
                    400,
                    mapping={
                        "channel": "#incidents",
                        "urgent": "{{ true }}",
                        "text": "Unsummarized: {{ input.text }}",
                    },
                ),
                node("post", "end", "Post", 920, 200, output="{{ last }}"),
            ],
            "edges": edges(
                "alert>summarize>severity",
                ("summarize", "error", "raw"),
                ("severity", "critical", "page"),
                ("severity", "high", "page"),
                ("severity", "default", "log"),
                "page>post",
                "log>post",
                "raw>post",
            ),
        },
        {
            "text": "p95 latency on checkout-api above 2 s for 10 minutes since the 14:05 deploy",
            "severity": "high",
        },
    ),
    TemplateSpec(
        "weekly-ops-digest",
        "Weekly operations digest",
        "operations",
        "intermediate",
        "4.3",
        "Every Monday at 08:00 (or on demand), an analyst reviews each area on your list in a loop and "
        "a writer turns the notes into one digest.",
        {
            "nodes": [
                node(
                    "weekly",
                    "trigger",
                    "Mondays 08:00",
                    40,
                    120,
                    kind="schedule",
                    cron="0 8 * * 1",
                    timezone="UTC",
                ),
                node("now", "trigger", "Run now", 40, 280, kind="manual"),
                node(
                    "areas",
                    "set_variable",
                    "Areas to review",
                    260,
                    200,
                    variables={
                        "areas": "{{ default(input.areas, ['Shipping delays', 'Inventory levels', 'Open tickets']) }}",
                        "notes": "{{ [] }}",
                    },
                ),
                node(
                    "each",
                    "loop",
                    "For each area",
                    480,
                    200,
                    mode="foreach",
                    items="{{ vars.areas }}",
                    max_iterations=20,
                ),
                agent(
                    "review",
                    "Review the area",
                    700,
                    80,
                    "analyst",
                    "Give this week's status of '{{ item }}' (area {{ index + 1 }} of {{ len(vars.areas) }}) "
                    "in two sentences, with one number to watch.",
                ),
                node(
                    "collect",
                    "set_variable",
                    "Collect the note",
                    920,
                    80,
                    variables={"notes": "{{ vars.notes + [str(item) + ': ' + str(last)] }}"},
                ),
                agent(
                    "digest",
                    "Write the digest",
                    700,
                    320,
                    "writer",
                    "Write the weekly operations digest from these notes, most urgent first:\n"
                    "{{ join(vars.notes, '\\n') }}",
                ),
                node(
                    "publish",
                    "end",
                    "Digest",
                    920,
                    320,
                    output={"digest": "{{ last }}", "notes": "{{ vars.notes }}"},
                ),
            ],
            "edges": edges(
                "weekly>areas",
                "now>areas>each",
                ("each", "body", "review"),
                "review>collect>each",
                ("each", "done", "digest"),
                "digest>publish",
            ),
        },
        {"areas": ["Shipping delays", "Supplier invoices"]},
    ),
)
