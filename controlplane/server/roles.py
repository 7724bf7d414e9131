"""Roles from the server's configuration file ([roles] in server.toml): which tailnet users and tags are admins,
viewers, nodes and metrics scrapers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from controlplane.api import NODE_TAG

from .identity import Role

#: The tag agents' machines carry by default (design §5.3).
DEFAULT_NODE_TAG = NODE_TAG


class RoleRule(BaseModel):
    """RoleRule matches tailnet callers by login name (`ops` or `ops@example.com`) or by ACL tag."""

    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    def matches(self, login_name: str, tags: list[str]) -> bool:
        """matches reports whether a caller with this login name and these tags falls under the rule."""
        short = login_name.split("@", 1)[0]
        return any(user in (login_name, short) for user in self.users) or bool(set(self.tags) & set(tags))


class RolesConfig(BaseModel):
    """RolesConfig maps tailnet identities to roles; the first matching role of admin, viewer, node, scraper wins."""

    model_config = ConfigDict(extra="forbid")

    admin: RoleRule = Field(default_factory=RoleRule)
    viewer: RoleRule = Field(default_factory=RoleRule)
    node: RoleRule = Field(default_factory=lambda: RoleRule(tags=[DEFAULT_NODE_TAG]))
    # scraper: may read /metrics and nothing else (the Prometheus machine).
    scraper: RoleRule = Field(default_factory=RoleRule)

    def role_of(self, login_name: str, tags: list[str]) -> Role | None:
        """role_of returns the caller's role, or None when no rule names it."""
        rules = (
            (Role.ADMIN, self.admin),
            (Role.VIEWER, self.viewer),
            (Role.NODE, self.node),
            (Role.SCRAPER, self.scraper),
        )
        for role, rule in rules:
            if rule.matches(login_name, tags):
                return role
        return None
