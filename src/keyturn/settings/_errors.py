"""The one error a bad setting raises; the CLI turns it into exit code 2."""

from __future__ import annotations


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe; the message names the key."""

    def __init__(self, key: str, problem: str, source: str = "") -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f" (from {source})" if source else ""
        super().__init__(f"invalid setting {key}{where}: {problem}")


class ConfigFileError(SettingsError):
    """The configuration file cannot be read or parsed."""

    def __init__(self, path: str, problem: str) -> None:
        self.key = "config"
        self.problem = problem
        self.source = path
        ValueError.__init__(self, f"config file {path}: {problem}")
