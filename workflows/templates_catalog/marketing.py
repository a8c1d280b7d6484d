"""Marketing templates."""

from __future__ import annotations

from workflows.templates_catalog.spec import TemplateSpec, agent, edges, node

TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        "blog-post-pipeline",
        "Blog post: research, outline, draft, edit",
        "marketing",
        "beginner",
        "4.7",
        "A sequential chain of four specialists: a researcher gathers facts, a writer outlines and "
        "drafts, and a copy editor polishes. Each step reads the previous step's output.",
        {
            "nodes": [
                node("start", "trigger", "Topic", 40, 160, kind="manual"),
                agent(
                    "research",
                    "Research",
                    260,
                    160,
                    "research",
                    "Research the topic below. List the key facts, angles and sources.\nTopic: {{ input.text }}",
                ),
                agent(
                    "outline",
                    "Outline",
                    480,
                    160,
                    "writer",
                    "Create a blog post outline based on this research:\n{{ nodes.research.output }}",
                ),
                agent(
                    "draft", "Draft", 700, 160, "writer", "Write the blog post from this outline:\n{{ last }}"
                ),
                agent("edit", "Edit", 920, 160, "editor", "Edit and improve this draft:\n{{ last }}"),
                node(
                    "article",
                    "end",
                    "Article",
                    1140,
                    160,
                    output={"article": "{{ last }}", "outline": "{{ nodes.outline.output }}"},
                ),
            ],
            "edges": edges("start>research>outline>draft>edit>article"),
        },
        {"text": "Why small teams should automate their weekly reporting"},
    ),
    TemplateSpec(
        "campaign-fan-out",
        "Multi-channel campaign copy",
        "marketing",
        "intermediate",
        "4.5",
        "Writes LinkedIn, email and search-ad copy for one product in parallel, then a strategist "
        "combines the three into a single campaign plan.",
        {
            "nodes": [
                node("start", "trigger", "Product brief", 40, 200, kind="manual"),
                node(
                    "brief",
                    "set_variable",
                    "Brief",
                    240,
                    200,
                    variables={
                        "product": "{{ default(input.product, input.text) }}",
                        "audience": "{{ default(input.audience, 'small business owners') }}",
                    },
                ),
                node("fan_out", "parallel", "All channels at once", 440, 200),
                agent(
                    "linkedin",
                    "LinkedIn posts",
                    660,
                    40,
                    "marketing",
                    "Write two LinkedIn posts about {{ vars.product }} for {{ vars.audience }}.",
                ),
                agent(
                    "email",
                    "Launch email",
                    660,
                    200,
                    "writer",
                    "Write a launch email about {{ vars.product }} for {{ vars.audience }}.",
                ),
                agent(
                    "ads",
                    "Search ads",
                    660,
                    360,
                    "marketing",
                    "Write three search ads (headline + description) for {{ vars.product }}.",
                ),
                node("gather", "join", "All copy ready", 880, 200, mode="all"),
                agent(
                    "plan",
                    "Campaign plan",
                    1080,
                    200,
                    "marketing",
                    "Combine this copy into one campaign plan with a posting schedule.\n"
                    "LinkedIn: {{ nodes.linkedin.output }}\nEmail: {{ nodes.email.output }}\n"
                    "Ads: {{ nodes.ads.output }}",
                ),
                node(
                    "campaign",
                    "end",
                    "Campaign",
                    1300,
                    200,
                    output={
                        "plan": "{{ last }}",
                        "linkedin": "{{ nodes.linkedin.output }}",
                        "email": "{{ nodes.email.output }}",
                        "ads": "{{ nodes.ads.output }}",
                    },
                ),
            ],
            "edges": edges(
                "start>brief>fan_out",
                "fan_out>linkedin>gather",
                "fan_out>email>gather",
                "fan_out>ads>gather",
                "gather>plan>campaign",
            ),
        },
        {"product": "AgentOS workflows", "audience": "operations managers"},
    ),
)
