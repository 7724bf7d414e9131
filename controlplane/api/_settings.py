"""Settings tables: each binary's settings declared once (name, environment variable, parser, default, help).

One table drives the loader (flag over environment over file over default), the command line flags each binary
builds from it, and the reference table in the docs. Files are TOML (`cara-server --config`, read with tomllib) or
an environment file of KEY=VALUE lines (`cara-agent --env-file`); an unknown key or a bad value is one SettingError
naming the file, the key (or the flag / variable) and what is wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._quantity import parse_duration


class SettingError(ValueError):
    """SettingError is a bad setting; its message is one line naming where the value came from and what is wrong."""


@dataclass(frozen=True, slots=True)
class Setting:
    """Setting is one row of a settings table."""

    # name: the attribute and file key; the flag is --name-with-dashes.
    name: str
    # env: the environment variable (in the environment or the agent's environment file); None: none.
    env: str | None
    # parse: turns a raw value (a string from a flag, the environment or an env file; any TOML value) into the
    # setting's value; raises ValueError with a short reason.
    parse: Callable[[object], object]
    default: object
    help: str
    # flag: whether the command line has a flag for it; file: whether the config file may set it.
    flag: bool = True
    file: bool = True
    # shown: the default as the docs and --help show it (when the value's repr is not what an operator writes).
    shown: str | None = None
    # multiple: the flag may be repeated (its value is then a tuple).
    multiple: bool = False

    @property
    def flag_name(self) -> str:
        """flag_name is the command line flag, e.g. --heartbeat-interval."""
        return "--" + self.name.replace("_", "-")

    def default_text(self) -> str:
        """default_text is the default as an operator would write it."""
        if self.shown is not None:
            return self.shown
        return "(none)" if self.default is None else str(self.default)

    def help_line(self) -> str:
        """help_line is the flag's --help text: the help, the variable and the default."""
        env = f"env {self.env}; " if self.env else ""
        return f"{self.help} ({env}default: {self.default_text()})"


class SettingsTable:
    """SettingsTable is a binary's settings, in the order they are documented."""

    def __init__(self, *settings: Setting) -> None:
        self.settings = settings
        self._by_name = {s.name: s for s in settings}
        self._by_env = {s.env: s for s in settings if s.env}

    def __iter__(self) -> Iterator[Setting]:
        return iter(self.settings)

    def __getitem__(self, name: str) -> Setting:
        return self._by_name[name]

    def load(
        self,
        *,
        flags: Mapping[str, object | None],
        environ: Mapping[str, str],
        file: Mapping[str, object],
        file_label: str = "",
        file_by_env: bool = False,
    ) -> dict[str, Any]:
        """load returns every setting's parsed value: flag (None = not given) over environment over file (keyed by
        setting name) over default; raises SettingError naming the flag, the variable or the file and its key (the
        variable's name when `file_by_env`, for an environment file)."""
        values: dict[str, Any] = {}
        for setting in self.settings:
            label, raw = self.source(setting, flags, environ, file, file_label, file_by_env)
            if label is None:
                values[setting.name] = setting.default
                continue
            try:
                values[setting.name] = setting.parse(raw)
            except (ValueError, TypeError) as exc:
                raise SettingError(f"{label}: {exc}") from None
        return values

    @staticmethod
    def source(
        setting: Setting,
        flags: Mapping[str, object | None],
        environ: Mapping[str, str],
        file: Mapping[str, object],
        file_label: str = "",
        file_by_env: bool = False,
    ) -> tuple[str | None, object]:
        """source returns (how to name it in an error, raw value) of the winning source; (None, None): default."""
        if setting.flag and flags.get(setting.name) not in (None, ()):
            return setting.flag_name, flags[setting.name]
        if setting.env and environ.get(setting.env):
            return setting.env, environ[setting.env]
        if setting.file and setting.name in file:
            key = setting.env if file_by_env and setting.env else setting.name
            return f"{file_label}: {key}", file[setting.name]
        return None, None

    def read_toml(self, path: Path) -> dict[str, object]:
        """read_toml reads a TOML settings file; raises SettingError on a missing/unreadable file, bad TOML or a key
        this table does not have (keys are the settings' names)."""
        try:
            doc = tomllib.loads(path.read_text())
        except OSError as exc:
            raise SettingError(f"{path}: cannot read it: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingError(f"{path}: not valid TOML: {exc}") from None
        known = sorted(s.name for s in self.settings if s.file)
        for key in doc:
            if key not in known:
                raise SettingError(f"{path}: {key}: unknown key (known: {', '.join(known)})")
        return doc

    def read_env_file(self, path: Path) -> dict[str, str]:
        """read_env_file reads KEY=VALUE lines (# comments, blank lines, optional quotes: systemd's
        EnvironmentFile syntax without continuations) and returns them keyed by setting name; raises SettingError
        naming the file, line and key on a malformed line or a variable this table does not have."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise SettingError(f"{path}: cannot read it: {exc.strerror or exc}") from None
        values: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            key, sep, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key:
                raise SettingError(f"{path}:{number}: {line!r} is not VARIABLE=VALUE")
            setting = self._by_env.get(key)
            if setting is None or not setting.file:
                known = ", ".join(sorted(s.env for s in self.settings if s.env and s.file))
                raise SettingError(f"{path}:{number}: {key}: unknown variable (known: {known})")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[setting.name] = value
        return values

    def markdown(self, *, file_column: bool = True) -> str:
        """markdown is the docs' reference table of this binary's settings (file_column: a column of file keys, for
        a TOML file; an environment file's keys are the variables)."""
        columns = ["flag", "environment", *(["file key"] if file_column else []), "default", "meaning"]
        rows = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
        for s in self.settings:
            cells = [f"`{s.flag_name}`" if s.flag else "", f"`{s.env}`" if s.env else ""]
            if file_column:
                cells.append(f"`{s.name}`" if s.file else "")
            cells += [s.default_text(), s.help]
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows) + "\n"


# ---- parsers: each takes a raw string (flag, environment, env file) or a TOML value ------------------------------


def as_text(raw: object) -> str:
    """as_text accepts a non-empty string."""
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not a string")
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw


def as_duration(raw: object) -> float:
    """as_duration accepts `10s`, `1m30s` or a number of seconds; returns seconds."""
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a duration")
    if isinstance(raw, int | float):
        if raw <= 0:
            raise ValueError(f"{raw!r} is not a positive duration")
        return float(raw)
    return parse_duration(as_text(raw))


def int_range(low: int, high: int) -> Callable[[object], int]:
    """int_range makes a parser of whole numbers within [low, high]."""

    def parse(raw: object) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise ValueError(f"{raw!r} is not a whole number")
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range [{low}, {high}]")
        return value

    return parse


def fraction(raw: object) -> float:
    """fraction accepts a number strictly between 0 and 1."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"{raw!r} is not a number")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None
    if not 0 < value < 1:
        raise ValueError(f"{value:g} is not between 0 and 1 (both excluded)")
    return value


def one_of(*choices: str) -> Callable[[object], str]:
    """one_of makes a parser accepting exactly one of `choices`."""

    def parse(raw: object) -> str:
        if raw not in choices:
            raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
        return str(raw)

    return parse


def as_list(raw: object) -> tuple[str, ...]:
    """as_list accepts a TOML list of strings, a comma-separated string, or a tuple of repeated flags."""
    items: list[object]
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",") if part.strip()]
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise ValueError(f"{raw!r} is not a list of strings")
    if not all(isinstance(item, str) and item for item in items):
        raise ValueError(f"{raw!r} is not a list of non-empty strings")
    return tuple(str(item) for item in items)


def as_path(raw: object) -> Path:
    """as_path accepts a non-empty path string."""
    return Path(as_text(raw))


def as_url(raw: object) -> str:
    """as_url accepts an http:// or https:// URL (a trailing slash is dropped)."""
    text = as_text(raw)
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"{text!r} must be an http:// or https:// URL")
    return text.rstrip("/")
