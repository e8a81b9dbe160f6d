"""What a person is shown of an error: the file a message names, never where it lives on the server.

Notices carry exception messages from DuckDB, SQLite, the Azure SDK and the Lens, and those often name a
file by its absolute path (`IO Error: The file "/srv/aoai/data/demo.duckdb" exists, but it is not a valid
DuckDB database file!`). The path tells a visitor how the server is laid out and nothing they can act on,
so every message a panel or KPI card shows goes through `shown`, which keeps the file name only. URLs and
Azure resource ids (`/subscriptions/...`) are left whole: they are what the user needs to find the
resource. The command line prints messages whole: whoever runs it is on the server already.
"""

from __future__ import annotations

import re

# an absolute POSIX path with at least one directory (not the path part of a URL: no word character,
# colon or slash before it; not an Azure resource id), or a Windows path with a drive letter
_POSIX = re.compile(r"(?<![\w.:/\\~-])/(?!subscriptions/|providers/)(?:[^\s/\"'`<>|:;,()\[\]{}]+/)+(?=[^\s/])", re.I)
_WINDOWS = re.compile(r"(?<![\w])[A-Za-z]:\\(?:[^\s\\\"'`<>|:;,()\[\]{}]+\\)+(?=[^\s\\])")


def shown(text: str | None) -> str:
    """`text` with every absolute directory removed, so `/srv/aoai/data/demo.duckdb` reads `demo.duckdb`."""
    if not text:
        return text or ""
    return _WINDOWS.sub("", _POSIX.sub("", text))
