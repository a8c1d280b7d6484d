"""Customer Service templates."""

from __future__ import annotations

from workflows.templates_catalog.spec import TemplateSpec, agent, edges, node

TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        "support-triage",
        "Support triage to specialists",
        "customer_service",
        "intermediate",
        "4.8",
        "An LLM router reads each incoming ticket and hands it to the billing, technical or account "
        "specialist; anything it cannot place goes to a general support agent. Post tickets to the "
        "signed webhook from your help desk or contact form.",
        {
            "nodes": [
                node("ticket", "trigger", "Ticket received", 40, 200, kind="webhook"),
                node(
                    "classify",
                    "router",
                    "Classify the ticket",
                    280,
                    200,
                    agent_template="triage",
                    labels=["billing", "technical", "account"],
                    input="{{ input.text }}",
                    instructions="Pick the team that should answer this customer.",
                ),
                agent(
                    "billing", "Billing specialist", 560, 40, "billing", "Customer message:\n{{ input.text }}"
                ),
                agent(
                    "technical",
                    "Technical support",
                    560,
                    200,
                    "tech_support",
                    "Customer message:\n{{ input.text }}",
                ),
                agent(
                    "general", "General support", 560, 360, "support", "Customer message:\n{{ input.text }}"
                ),
                node(
                    "reply",
                    "end",
                    "Reply",
                    840,
                    200,
                    output={"team": "{{ default(nodes.classify.port, 'general') }}", "reply": "{{ last }}"},
                ),
            ],
            "edges": edges(
                "ticket>classify",
                ("classify", "billing", "billing"),
                ("classify", "technical", "technical"),
                ("classify", "account", "general"),
                ("classify", "default", "general"),
                ("classify", "error", "general"),
                "billing>reply",
                "technical>reply",
                "general>reply",
            ),
        },
        {"text": "I was charged twice for my March invoice, can you refund one of them?"},
    ),
    TemplateSpec(
        "refund-approval",
        "Refund request with manager approval",
        "customer_service",
        "intermediate",
        "4.7",
        "Small refunds are approved automatically; anything over 100 waits for a manager's decision "
        "(web, API or the emailed link). The customer gets a confirmation or a kind explanation either way.",
        {
            "nodes": [
                node("request", "trigger", "Refund requested", 40, 200, kind="webhook"),
                node(
                    "facts",
                    "transform",
                    "Read the request",
                    260,
                    200,
                    mapping={
                        "amount": "{{ float(default(input.amount, 0)) }}",
                        "order": "{{ default(input.order_id, 'unknown') }}",
                        "reason": "{{ default(input.reason, input.text) }}",
                    },
                ),
                node(
                    "large", "condition", "Over 100?", 480, 200, expression="nodes.facts.output.amount > 100"
                ),
                node(
                    "approve",
                    "approval",
                    "Manager approval",
                    700,
                    100,
                    title="Refund {{ nodes.facts.output.amount }} on order {{ nodes.facts.output.order }}",
                    message="Reason given: {{ nodes.facts.output.reason }}",
                    assignees=[],
                    timeout_seconds=2 * 86400,
                    on_timeout="rejected",
                ),
                node(
                    "auto",
                    "set_variable",
                    "Auto-approve",
                    700,
                    320,
                    variables={"auto_approved": "{{ true }}"},
                ),
                agent(
                    "confirm",
                    "Confirm the refund",
                    940,
                    100,
                    "support",
                    "Tell the customer their refund of {{ nodes.facts.output.amount }} for order "
                    "{{ nodes.facts.output.order }} is approved and arrives in 5-7 business days.",
                ),
                agent(
                    "decline",
                    "Explain the decision",
                    940,
                    320,
                    "support",
                    "Kindly explain to the customer that we could not approve the refund for order "
                    "{{ nodes.facts.output.order }} yet, and ask for any details that would help. "
                    "Manager's comment: {{ default(nodes.approve.output.comment, 'none') }}",
                ),
                node(
                    "done",
                    "end",
                    "Done",
                    1180,
                    200,
                    output={"order": "{{ nodes.facts.output.order }}", "message": "{{ last }}"},
                ),
            ],
            "edges": edges(
                "request>facts>large",
                ("large", "true", "approve"),
                ("large", "false", "auto"),
                ("approve", "approved", "confirm"),
                ("approve", "rejected", "decline"),
                ("approve", "timeout", "decline"),
                "auto>confirm",
                "confirm>done",
                "decline>done",
            ),
        },
        {"order_id": "A-1042", "amount": 240, "reason": "The parcel arrived damaged."},
    ),
)
