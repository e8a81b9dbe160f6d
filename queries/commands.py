"""CLI subcommands owned by the query layer: the demo workspace and configuration checks."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from queries.settings import ConfigError, config_path, load_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def demo_seed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from queries.demo.seed import seed

    settings = load_settings()
    path = Path(args.path) if args.path else settings.demo_path
    days = args.days or settings.demo.days
    rpd = args.requests_per_day or settings.demo.requests_per_day
    seed_value = settings.demo.seed if args.seed is None else args.seed
    if days < 1 or rpd < 1:
        print("demo seed: --days and --requests-per-day must be positive", file=sys.stderr)
        return EXIT_USAGE
    end = None
    if args.end:
        try:
            end = datetime.fromisoformat(args.end.replace("Z", "+00:00"))
        except ValueError:
            print(f"demo seed: --end {args.end!r} is not an ISO 8601 time", file=sys.stderr)
            return EXIT_USAGE
    started = time.perf_counter()
    with tqdm(total=days + 1, desc=f"seeding {path}", unit="day", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        result = seed(path, days=days, requests_per_day=rpd, seed=seed_value, end=end, progress=progress)
    took = time.perf_counter() - started
    print(
        f"wrote {result['requests']:,} requests ({result['rows']:,} AzureDiagnostics rows) over {days} days "
        f"to {path} in {took:.1f} s ({result['requests'] / max(took, 1e-9):,.0f} requests/s)"
    )
    return EXIT_OK


def check_config(args: argparse.Namespace) -> int:
    path, own = config_path()
    try:
        settings = load_settings()
    except ConfigError as e:
        for line in e.problems:
            print(line)
        print(f"{len(e.problems)} problem(s); aoai-lens will not start with this configuration.", file=sys.stderr)
        return EXIT_USAGE
    where = str(path) if own else "no aoai-lens.toml: the bundled demo configuration"
    print(f"configuration OK ({where})")
    print(f"  source: {settings.source.kind}" + (f" (demo workspace {settings.demo_path})" if settings.is_demo else ""))
    print(f"  attribution rules: {len(settings.attribution)}, budgets: {len(settings.budgets)}")
    print(
        f"  probe targets: {len(settings.probes.targets)}, alert rules: {len(settings.alerts.rules)}, "
        f"channels: {len(settings.alerts.channels)}"
    )
    return EXIT_OK
