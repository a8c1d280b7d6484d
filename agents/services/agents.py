"""Agent services: configs and their validation, versions, publishing, cloning."""

from __future__ import annotations

import difflib
import json
import logging
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Organization, User
from accounts.services import ServiceError
from agents.config import AgentConfig, ConfigError, ModelChoice, parse_config
from agents.models import Agent, AgentVersion
from agents.runtime.providers import default_model

logger = logging.getLogger(__name__)


def default_config(*, org: Organization, instructions: str = "") -> dict[str, Any]:
    provider, name = default_model(org=org)
    return {"instructions": instructions, "model": {"provider": provider, "name": name}}


# ----------------------------------------------------------- validation


def _referenced_agent_ids(config: AgentConfig) -> set[int]:
    ids = {h.agent_id for h in config.handoffs}
    ids |= {int(t.config["agent_id"]) for t in config.tools if t.type == "agent"}
    return ids


_URL_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def public_url_error(url: str) -> str | None:
    """Why a user-supplied URL may not be called (loopback, private, metadata...), or None.

    Checked at save time; the safe client checks again at call time, since DNS answers change. A host
    that does not resolve from here is let through for the same reason (runs may resolve it)."""
    from integrations.safe_http import UnsafeURLError, validate_url

    try:
        validate_url(_URL_PLACEHOLDER.sub("x", url))
    except UnsafeURLError as exc:
        if not str(exc).startswith("Could not resolve"):
            return str(exc)
    return None


def config_validate(*, org: Organization, agent: Agent | None, data: dict[str, Any]) -> AgentConfig:
    """Parse the config and check what the schema alone cannot: references stay inside the org,
    and handoffs / agent-tools never form a cycle."""
    config = parse_config(data)
    from agents.output_types import BUILTIN_OUTPUT_TYPES

    if config.output_type.schema_ is None and config.output_type.name not in BUILTIN_OUTPUT_TYPES:
        raise ConfigError(
            {
                "output_type.name": [
                    f"Unknown output type “{config.output_type.name}”; use one of {', '.join(BUILTIN_OUTPUT_TYPES)} "
                    "or give a custom schema."
                ]
            }
        )
    url_errors = {
        f"tools.{i}.config.url": [error]
        for i, tool in enumerate(config.tools)
        if tool.type == "http" and (error := public_url_error(tool.config["url"]))
    }
    if url_errors:
        raise ConfigError(url_errors)
    refs = _referenced_agent_ids(config)
    if refs:
        found = set(Agent.objects.for_org(org).filter(pk__in=refs).values_list("pk", flat=True))
        missing = refs - found
        if missing:
            raise ServiceError(
                f"Unknown agent id(s) for this organization: {', '.join(map(str, sorted(missing)))}.",
                code="not_found",
                status=404,
            )
        if agent is not None and agent.pk in refs:
            raise ConfigError({"handoffs": ["An agent cannot hand off to, or call, itself."]})
        if agent is not None:
            _check_cycles(org=org, agent_id=agent.pk, refs=refs)
    from agents.runtime.providers import provider_check

    # An unknown provider in a config is a field error of that config, not a missing resource.
    choices: list[tuple[str, ModelChoice]] = [("model", config.model)]
    if config.model.fallback:
        choices.append(("model.fallback", config.model.fallback))
    for path, choice in choices:
        try:
            provider_check(org=org, provider=choice.provider, model=choice.name)
        except ServiceError as exc:
            field = "provider" if exc.code == "unknown_provider" else "name"
            raise ConfigError({f"{path}.{field}": [str(exc)]})
    return config


def _check_cycles(*, org: Organization, agent_id: int, refs: set[int]) -> None:
    """Walk the published-or-latest configs of referenced agents; reaching agent_id again is a cycle."""
    seen: set[int] = set()
    frontier = list(refs)
    while frontier:
        current = frontier.pop()
        if current == agent_id:
            raise ConfigError({"handoffs": ["This would create a handoff cycle between agents."]})
        if current in seen:
            continue
        seen.add(current)
        version = (
            AgentVersion.objects.for_org(org)
            .filter(agent_id=current)
            .order_by("-number")
            .only("config")
            .first()
        )
        if version is None:
            continue
        try:
            frontier.extend(_referenced_agent_ids(parse_config(version.config)))
        except ConfigError:
            continue


# ------------------------------------------------------------- agents


def _unique_slug(org: Organization, name: str, exclude: int | None = None) -> str:
    base = slugify(name)[:100] or "agent"
    slug, n = base, 2
    qs = Agent.objects.for_org(org)
    if exclude:
        qs = qs.exclude(pk=exclude)
    while qs.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def agent_create(
    *,
    org: Organization,
    by: User | None,
    name: str,
    config: dict[str, Any] | None = None,
    publish: bool = False,
    **fields: Any,
) -> Agent:
    from billing import limits

    # The plan's limit (402 with an upgrade link), for the UI and API alike; held until the commit.
    limits.check(org, "agents")
    agent = Agent.objects.create(
        organization=org, name=name.strip(), slug=_unique_slug(org, name), created_by=by, **fields
    )
    data = config if config is not None else default_config(org=org)
    version = version_create(agent=agent, by=by, config=data, note="Created")
    if publish:
        agent_publish(agent=agent, version=version, by=by)
    return agent


def version_create(*, agent: Agent, by: User | None, config: dict[str, Any], note: str = "") -> AgentVersion:
    parsed = config_validate(org=agent.organization, agent=agent, data=config)
    for _ in range(3):
        number = (agent.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        try:
            with transaction.atomic():
                version = AgentVersion.objects.create(
                    organization_id=agent.organization_id,
                    agent=agent,
                    number=number,
                    config=parsed.dump(),
                    note=note[:200],
                    created_by=by,
                )
            break
        except IntegrityError:  # two saves raced for the same number: take the next one
            continue
    else:
        raise ServiceError("Could not save the version; try again.", code="conflict", status=409)
    Agent.objects.filter(pk=agent.pk).update(updated_at=timezone.now())
    return version


def agent_update(
    *, agent: Agent, by: User | None, config: dict[str, Any] | None = None, note: str = "", **fields: Any
) -> Agent:
    """Change profile fields in place; a config change is a new draft version."""
    allowed = {"name", "description", "avatar", "role", "category", "visibility"}
    changed = [k for k in fields if k in allowed]
    for key in changed:
        setattr(agent, key, fields[key])
    if "name" in changed:
        agent.slug = _unique_slug(agent.organization, agent.name, exclude=agent.pk)
        changed.append("slug")
    if changed:
        agent.save(update_fields=[*changed, "updated_at"])
    if config is not None:
        version_create(agent=agent, by=by, config=config, note=note or "Edited")
    return agent


def agent_config_draft(*, agent: Agent) -> dict[str, Any]:
    """The config the next edit starts from: the latest version's."""
    latest = agent.latest_version()
    return dict(latest.config) if latest else default_config(org=agent.organization)


def agent_publish(*, agent: Agent, version: AgentVersion, by: User | None) -> Agent:
    if version.agent_id != agent.pk:
        raise ServiceError("That version belongs to another agent.", code="not_found", status=404)
    agent.published_version = version
    if agent.status == Agent.Status.DRAFT:
        agent.status = Agent.Status.ACTIVE
    agent.save(update_fields=["published_version", "status", "updated_at"])
    return agent


def agent_rollback(*, agent: Agent, version: AgentVersion, by: User | None) -> AgentVersion:
    """Rolling back copies an old config into a new version and publishes it: history stays linear."""
    new = version_create(agent=agent, by=by, config=version.config, note=f"Rollback to v{version.number}")
    agent_publish(agent=agent, version=new, by=by)
    return new


def agent_archive(*, agent: Agent) -> Agent:
    agent.status = Agent.Status.ARCHIVED
    agent.save(update_fields=["status", "updated_at"])
    return agent


def agent_restore(*, agent: Agent) -> Agent:
    """Back from the archive: active if it has a published version, else a draft. It counts against
    the plan's agent limit again, so a full plan refuses it (402) as it refuses a new agent."""
    if agent.is_archived:
        from billing import limits

        with transaction.atomic():
            limits.check(agent.organization_id, "agents")
            agent.status = Agent.Status.ACTIVE if agent.published_version_id else Agent.Status.DRAFT
            agent.save(update_fields=["status", "updated_at"])
    return agent


@transaction.atomic
def agent_clone(*, agent: Agent, by: User | None, name: str | None = None) -> Agent:
    """Copies profile, config (tools included) and context; never runs, sessions or memory."""
    source = agent.published_version or agent.latest_version()
    clone = agent_create(
        org=agent.organization,
        by=by,
        name=name or f"{agent.name} (copy)",
        config=source.config if source else None,
        description=agent.description,
        avatar=agent.avatar,
        role=agent.role,
        category=agent.category,
        visibility=agent.visibility,
    )
    for entry in agent.context_entries.all():
        clone.context_entries.create(organization_id=clone.organization_id, key=entry.key, value=entry.value)
    return clone


def version_diff(*, old: AgentVersion, new: AgentVersion) -> list[str]:
    a = json.dumps(old.config, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    b = json.dumps(new.config, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    return list(difflib.unified_diff(a, b, f"v{old.number}", f"v{new.number}", lineterm=""))
