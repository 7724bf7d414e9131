"""Roles from the server's configuration file: which tailnet users and tags are admins, viewers and nodes."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controlplane.api import NODE_TAG, describe_errors

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
    """RolesConfig maps tailnet identities to roles; the first matching role of admin, viewer, node wins."""

    model_config = ConfigDict(extra="forbid")

    admin: RoleRule = Field(default_factory=RoleRule)
    viewer: RoleRule = Field(default_factory=RoleRule)
    node: RoleRule = Field(default_factory=lambda: RoleRule(tags=[DEFAULT_NODE_TAG]))

    def role_of(self, login_name: str, tags: list[str]) -> Role | None:
        """role_of returns the caller's role, or None when no rule names it."""
        for role, rule in ((Role.ADMIN, self.admin), (Role.VIEWER, self.viewer), (Role.NODE, self.node)):
            if rule.matches(login_name, tags):
                return role
        return None


class ServerConfig(BaseModel):
    """ServerConfig is the server's configuration file (YAML)."""

    model_config = ConfigDict(extra="forbid")

    roles: RolesConfig = Field(default_factory=RolesConfig)


def load_config(path: Path | None) -> ServerConfig:
    """load_config reads the YAML file at path (defaults when None); raises ValueError naming the bad field."""
    if path is None:
        return ServerConfig()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path}: " + "; ".join(describe_errors(exc))) from None
