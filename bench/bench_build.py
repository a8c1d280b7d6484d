"""Build: the cost of turning a stored AgentVersion into a ready agno Agent (configs and clients cached).

Reference in the same run: constructing a bare agno Agent around an already-built model.
Target: <= 1 ms per build.  Run: python -m bench.bench_build
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("AGNO_TELEMETRY", "false")


def main(n: int = 2000) -> None:
    from bench.stack import print_table, stack, summary

    with stack(web=False, worker=False) as (_, seeded, _llm):
        from agno.agent import Agent as AgnoAgent

        from agents.models import Agent
        from agents.runtime.builder import build_agent, model_for, version_config
        from agents.runtime.tools import ToolContext

        agent = Agent.objects.select_related("published_version").get(pk=seeded.agent_id)
        version = agent.published_version
        ctx = ToolContext(agent.organization_id, agent.pk, None, None)
        build_agent(agent=agent, version=version, ctx=ctx)  # warm: parsed config + client cached
        model = model_for(agent.organization_id, version_config(version).model, 0.7, None)

        ours, bare = [], []
        for _ in range(n):
            t = time.perf_counter()
            build_agent(agent=agent, version=version, ctx=ctx)
            ours.append((time.perf_counter() - t) * 1e6)
            t = time.perf_counter()
            AgnoAgent(model=model, instructions="Be brief.", telemetry=False)
            bare.append((time.perf_counter() - t) * 1e6)
        a, b = summary(ours), summary(bare)
        print_table(
            "Agent build from a stored version (cached)",
            [("build_agent (ours)", a), ("bare agno Agent(model=...)", b)],
            unit="µs",
        )
        print(
            f"\nbuild p50 = {a['p50']:.1f} µs ({a['p50'] / 1000:.3f} ms; target <= 1 ms): "
            f"{a['p50'] / b['p50']:.1f}x a bare agno Agent; overhead {a['p50'] - b['p50']:.1f} µs"
        )


if __name__ == "__main__":
    main()
