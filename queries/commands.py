"""CLI subcommands owned by the query layer: catalogue queries, the demo workspace and configuration checks."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from queries.config import ConfigError, config_path, load_settings, user_password_problems
from queries.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


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
        problems = user_password_problems(settings)
        if problems:
            raise ConfigError(problems)
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


# ---- aoai-lens query / kql ----------------------------------------------------------------------------


class _Usage(Exception):
    """Bad usage: the message is printed and the command exits 2."""


def _time_args(args: argparse.Namespace) -> dict[str, Any]:
    from queries.render import RenderError, parse_duration

    since, start, end = getattr(args, "since", None), getattr(args, "start", None), getattr(args, "end", None)
    if since and (start or end):
        raise _Usage("give either --since or --start/--end, not both")
    if end and not start:
        raise _Usage("--end needs --start")
    out: dict[str, Any] = {}
    if since:
        try:
            out["since"] = parse_duration(since)
        except RenderError as e:
            raise _Usage(f"--since: {e}") from None
    for key, text in (("start", start), ("end", end)):
        if text:
            try:
                out[key] = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise _Usage(f"--{key} {text!r} is not an ISO 8601 time like 2025-01-31T12:00:00Z") from None
    return out


def _params(args: argparse.Namespace) -> dict[str, str]:
    params: dict[str, str] = {}
    for k, v in getattr(args, "param", None) or []:
        if k in params:
            raise _Usage(f"--param {k} given twice (for several names use k=a,b)")
        params[k] = v
    return params


def _lens() -> Any:
    from queries.lens import Lens

    return Lens.from_settings(load_settings())


def _list_catalogue() -> int:
    from queries.catalogue import load_catalogue

    catalogue = load_catalogue()
    width = max(len(n) for n in catalogue)
    for name, spec in sorted(catalogue.items()):
        print(f"{name:<{width}}  {spec.title}")
    print(f"\n{len(catalogue)} queries; `aoai-lens query NAME` runs one, `aoai-lens kql NAME` shows its KQL.")
    return EXIT_OK


def _spec_or_usage(name: str) -> Any:
    from queries import catalogue

    try:
        return catalogue.get(name)
    except KeyError as e:
        raise _Usage(str(e.args[0])) from None


def _write(frame: Any, fmt: str) -> None:
    if fmt == "csv":
        from queries.safecsv import to_csv

        sys.stdout.write(to_csv(frame))
    elif fmt == "json":
        records = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms"))
        sys.stdout.write(json.dumps(records, indent=1) + "\n")
    elif frame.empty:
        print("(no rows)")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200):
            print(frame.to_string(index=False))


def query(args: argparse.Namespace) -> int:
    """`aoai-lens query [NAME]`: list the catalogue, or run one query and print its frame."""
    from queries.render import RenderError
    from queries.sources.embedded import WorkspaceError

    if not args.name:
        return _list_catalogue()
    try:
        _spec_or_usage(args.name)
        kwargs = {**_time_args(args), "params": _params(args)}
        result = _lens().run(args.name, **kwargs)
    except (_Usage, RenderError) as e:
        print(f"query {args.name}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except WorkspaceError as e:
        print(f"query {args.name}: {e}", file=sys.stderr)
        return EXIT_FAILED
    if result.status == "failed":
        print(f"query {args.name} failed: {result.notice}", file=sys.stderr)
        print("the KQL that was sent:\n" + result.kql, file=sys.stderr)
        if result.portal_url:
            print(f"run it in the Azure portal: {result.portal_url}", file=sys.stderr)
        return EXIT_FAILED
    _write(result.frame, getattr(args, "format", "table") or "table")
    if result.status == "partial":
        print(f"query {args.name}: partial answer: {result.notice}", file=sys.stderr)
    return EXIT_OK


def kql(args: argparse.Namespace) -> int:
    """`aoai-lens kql NAME`: the KQL exactly as it would be sent (let prefix with bound values, then the body)."""
    from queries.render import RenderError
    from queries.sources.embedded import WorkspaceError

    try:
        _spec_or_usage(args.name)
        kwargs = {**_time_args(args), "params": _params(args)}
        _spec, _tr, text = _lens().render(args.name, **kwargs)
    except (_Usage, RenderError) as e:
        print(f"kql {args.name}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except WorkspaceError as e:
        print(f"kql {args.name}: {e}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.write(text)
    return EXIT_OK


def explain_429(args: argparse.Namespace) -> int:
    """`aoai-lens explain-429`: every burst of 429s in the range, the limit it hit, who called, what to do."""
    from queries.render import RenderError
    from queries.sources.embedded import WorkspaceError
    from queries.throttling import explain_429 as explain
    from queries.throttling import report

    try:
        kwargs = _time_args(args)
        if not kwargs:
            kwargs["since"] = _duration("--since", "24h")
        if args.min_429 < 1:
            raise _Usage("--min-429 must be at least 1")
        deployments = [args.deployment] if args.deployment else []
        result = explain(_lens(), deployments=deployments, min_429=args.min_429, **kwargs)
    except (_Usage, RenderError) as e:
        print(f"explain-429: {e}", file=sys.stderr)
        return EXIT_USAGE
    except WorkspaceError as e:
        print(f"explain-429: {e}", file=sys.stderr)
        return EXIT_FAILED
    failed = [r for r in result.results[:2] if r.status == "failed"]
    if failed:
        for r in failed:
            print(f"explain-429: {r.name} failed: {r.notice}\nthe KQL that was sent:\n{r.kql}", file=sys.stderr)
        return EXIT_FAILED
    if getattr(args, "format", "text") == "json":
        records = json.loads(result.frame().to_json(orient="records", date_format="iso", date_unit="s"))
        sys.stdout.write(json.dumps(records, indent=1) + "\n")
    else:
        sys.stdout.write(report(result))
    for r in result.results:
        if r.status != "ok":
            print(f"explain-429: {r.name}: {r.status}: {r.notice}", file=sys.stderr)
    return EXIT_OK


def _duration(flag: str, text: str) -> Any:
    from queries.render import RenderError, parse_duration

    try:
        return parse_duration(text)
    except RenderError as e:
        raise _Usage(f"{flag}: {e}") from None


WRITER_WAIT_S = 60.0  # how long `import archive` waits for another writer of the workspace to finish


def import_archive(args: argparse.Namespace) -> int:
    """`aoai-lens import archive --account-url URL [--since 7d]`: load what is new in a storage account's
    diagnostic-settings archive into the embedded workspace (incremental; a re-run adds nothing)."""
    from datetime import timedelta

    from queries.archive import blob_service
    from queries.archive import import_archive as run_import
    from queries.filestore import WriterBusy
    from queries.render import RenderError, parse_duration

    settings = load_settings()
    try:
        since = parse_duration(args.since) if args.since else timedelta(days=settings.archive.since_days)
    except RenderError as e:
        print(f"import archive: --since: {e}", file=sys.stderr)
        return EXIT_USAGE
    secret = settings.archive.connection_string
    service = blob_service(
        args.account_url or settings.archive.account_url, secret.get_secret_value() if secret else None
    )
    # the scheduler's ingestion or archive job may hold the workspace's writer lock for a few seconds
    deadline = time.monotonic() + WRITER_WAIT_S
    while True:
        try:
            report = run_import(
                service,
                settings.demo_path,
                settings.archive_checkpoint_path,
                since=since,
                containers=settings.archive.containers,
            )
            break
        except WriterBusy as e:
            if time.monotonic() >= deadline:
                print(f"import archive: {e}", file=sys.stderr)
                return EXIT_FAILED
            time.sleep(1.0)
        except Exception as e:  # the storage account refused or could not be reached: say so, no traceback
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"import archive failed: {type(e).__name__}: {first[:300]}", file=sys.stderr)
            return EXIT_FAILED
    print(report)
    for problem in report.problems[:5]:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_OK


__all__ = ["check_config", "demo_seed", "explain_429", "import_archive", "kql", "query"]


def inventory(args: argparse.Namespace) -> int:
    """`aoai-lens inventory`: every Azure OpenAI and AI Services account across the configured
    subscriptions, its deployments and diagnostic settings, and what to fix (`queries.inventory`)."""
    from queries import inventory as inv
    from queries.sources.embedded import WorkspaceError

    try:
        result = _lens().inventory()
    except WorkspaceError as e:
        print(f"inventory: {e}", file=sys.stderr)
        return EXIT_FAILED
    if result.status == "failed":
        print(f"inventory: the estate cannot be read: {result.notice}", file=sys.stderr)
        return EXIT_FAILED
    if result.notice:
        print(f"inventory: {result.notice}", file=sys.stderr)
    if args.format == "csv":
        _write(inv.flat(result), "csv")
    elif args.format == "json":

        def records(frame: Any) -> Any:
            return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))

        doc = {
            "taken_at": result.taken_at.isoformat(),
            "source": result.source,
            "status": result.status,
            "problems": result.problems,
            "flags": records(result.flags),
            "accounts": records(result.accounts),
            "deployments": records(result.deployments),
            "diagnostic_settings": records(result.diagnostics),
        }
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        sections = [
            (f"Flags ({len(result.flags)})", result.flags.drop(columns=["ResourceId", "Action"])),
            (f"Accounts ({len(result.accounts)})", result.accounts.drop(columns=["ResourceId"])),
            (f"Deployments ({len(result.deployments)})", result.deployments.drop(columns=["ResourceId"])),
            (f"Diagnostic settings ({len(result.diagnostics)})", result.diagnostics.drop(columns=["ResourceId"])),
        ]
        for i, (title, frame) in enumerate(sections):
            print(("\n" if i else "") + title)
            _write(frame, "table")
    return EXIT_OK
