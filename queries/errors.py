"""Errors every layer raises and the CLI turns into exit codes (a leaf: it imports nothing of ours)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ConfigError(Exception):
    """A configuration that must not start. Each problem is one `location: problem` line."""

    problems: list[str]

    def __str__(self) -> str:
        return "\n".join(self.problems)
