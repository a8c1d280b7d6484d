"""HR templates."""

from __future__ import annotations

from workflows.templates_catalog.spec import TemplateSpec, agent, edges, node

TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        "candidate-screening",
        "Candidate screening with approval",
        "hr",
        "intermediate",
        "4.6",
        "Screens a resume against the role, drafts interview questions from the screening notes "
        "(shared context between steps), and asks the hiring manager before inviting or declining.",
        {
            "nodes": [
                node("start", "trigger", "Application", 40, 200, kind="manual"),
                node(
                    "context",
                    "set_variable",
                    "Shared context",
                    240,
                    200,
                    variables={
                        "candidate": "{{ default(input.name, 'the candidate') }}",
                        "role": "{{ default(input.role, 'the open role') }}",
                        "resume": "{{ default(input.resume, input.text) }}",
                    },
                ),
                agent(
                    "screen",
                    "Screen",
                    440,
                    200,
                    "recruiter",
                    "Screen {{ vars.candidate }} for {{ vars.role }}. List strengths, gaps and a "
                    "recommendation.\nResume:\n{{ vars.resume }}",
                ),
                node(
                    "remember",
                    "set_variable",
                    "Keep the notes",
                    640,
                    200,
                    variables={"screening": "{{ last }}"},
                ),
                agent(
                    "questions",
                    "Interview questions",
                    840,
                    200,
                    "recruiter",
                    "Write five interview questions for {{ vars.candidate }} ({{ vars.role }}) that probe "
                    "the gaps in these notes:\n{{ vars.screening }}",
                ),
                node(
                    "decide",
                    "approval",
                    "Hiring manager",
                    1040,
                    200,
                    title="Interview {{ vars.candidate }} for {{ vars.role }}?",
                    message="{{ vars.screening }}",
                    assignees=[],
                    timeout_seconds=3 * 86400,
                    on_timeout="timeout",
                ),
                agent(
                    "invite",
                    "Invitation",
                    1260,
                    80,
                    "recruiter",
                    "Write an interview invitation to {{ vars.candidate }} for {{ vars.role }}, offering "
                    "three time slots next week.",
                ),
                agent(
                    "decline",
                    "Kind decline",
                    1260,
                    320,
                    "recruiter",
                    "Write a kind, specific decline to {{ vars.candidate }} for {{ vars.role }}.",
                ),
                node(
                    "nudge",
                    "transform",
                    "Reminder",
                    1260,
                    460,
                    mapping={"text": "No decision on {{ vars.candidate }} after 3 days; please review."},
                ),
                node(
                    "outcome",
                    "end",
                    "Outcome",
                    1480,
                    200,
                    output={
                        "candidate": "{{ vars.candidate }}",
                        "questions": "{{ nodes.questions.output }}",
                        "message": "{{ last }}",
                    },
                ),
            ],
            "edges": edges(
                "start>context>screen>remember>questions>decide",
                ("decide", "approved", "invite"),
                ("decide", "rejected", "decline"),
                ("decide", "timeout", "nudge"),
                "invite>outcome",
                "decline>outcome",
                "nudge>outcome",
            ),
        },
        {
            "name": "Ada Moreau",
            "role": "Data engineer",
            "resume": "6 years of Python, Airflow and dbt at a fintech.",
        },
    ),
    TemplateSpec(
        "onboarding-plan",
        "New-hire onboarding plan",
        "hr",
        "beginner",
        "4.4",
        "A team of an assistant and a recruiter coordinates a first-week plan for a new hire, then a "
        "writer turns it into a warm welcome message.",
        {
            "nodes": [
                node("start", "trigger", "New hire", 40, 160, kind="manual"),
                node(
                    "hire",
                    "set_variable",
                    "New hire",
                    240,
                    160,
                    variables={
                        "name": "{{ default(input.name, input.text) }}",
                        "role": "{{ default(input.role, 'a new role') }}",
                        "start": "{{ default(input.start_date, 'next Monday') }}",
                    },
                ),
                node(
                    "plan",
                    "team",
                    "Plan the first week",
                    440,
                    160,
                    agent_templates=["assistant", "recruiter"],
                    mode="coordinate",
                    input="Create a day-by-day first-week onboarding plan for {{ vars.name }}, joining as "
                    "{{ vars.role }} on {{ vars.start }}.",
                ),
                agent(
                    "welcome",
                    "Welcome message",
                    660,
                    160,
                    "writer",
                    "Write a warm welcome message to {{ vars.name }} that summarizes this plan:\n{{ last }}",
                ),
                node(
                    "kit",
                    "end",
                    "Onboarding kit",
                    880,
                    160,
                    output={"plan": "{{ nodes.plan.output }}", "welcome": "{{ last }}"},
                ),
            ],
            "edges": edges("start>hire>plan>welcome>kit"),
        },
        {"name": "Priya Natarajan", "role": "Product designer", "start_date": "June 2"},
    ),
)
