"""The exit codes of every `aoai-lens` command, defined once: 0 success, 1 the operation failed,
2 bad usage or configuration (what `check-config` returns for a configuration that must not start)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
