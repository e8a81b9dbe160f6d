"""The `aoai-lens` command line: the one entry point of the whole program.

Parsers live here; each subcommand runs a handler in the layer that owns it (`queries.commands`,
`queries.cost.commands`, `alerts.commands`, `dashboard.serve`), imported here by name. Those modules
import their heavy dependencies inside the handlers, so `aoai-lens kql` does not pay for Dash. Exit codes
(`queries.exitcodes`): 0 success, 1 the operation failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from alerts import commands as alert_commands
from dashboard import serve
from queries import billing
from queries import commands as query_commands
from queries.cost import commands as cost_commands
from queries.errors import ConfigError
from queries.exitcodes import EXIT_FAILED, EXIT_USAGE


def _param(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected k=v, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v


Handler = Callable[[argparse.Namespace], int]


def _add(sub: argparse._SubParsersAction, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    p.set_defaults(handler=handler)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aoai-lens",
        description="Observability and cost attribution for Azure OpenAI.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _add(sub, "serve", serve.run, "serve the dashboard (and, by default, the scheduler)")
    p.add_argument("--host", help="address to bind (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from settings: 8050)")
    p.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler in this process")
    p.add_argument(
        "--no-auth", action="store_true", help="allow a non-loopback bind without an auth mode (a warning is printed)"
    )
    p.add_argument("--workers", type=int, default=1, help="web workers (gunicorn) when more than 1")

    demo = sub.add_parser("demo", help="the embedded demo workspace", description="the embedded demo workspace")
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="SUBCOMMAND", required=True)
    p = _add(demo_sub, "seed", alert_commands.demo_seed, "(re)build the demo workspace")
    p.add_argument("--days", type=int, help="days of telemetry, ending now (default 30)")
    p.add_argument("--requests-per-day", type=int, help="average requests per day (default 10000)")
    p.add_argument("--seed", type=int, help="random seed; the same seed gives the same data (default 42)")
    p.add_argument("--path", help="DuckDB file to write (default .aoai-lens/demo.duckdb)")
    p.add_argument("--end", help=argparse.SUPPRESS)  # pin 'now' (ISO time), for reproducible tests

    p = _add(sub, "query", query_commands.query, "run one catalogue query on the configured source")
    p.add_argument("name", nargs="?", help="query name (omit to list the catalogue)")
    p.add_argument("--since", help="how far back, e.g. 1h, 7d (default: the query's own)")
    p.add_argument("--start", help="start time (ISO 8601, UTC)")
    p.add_argument("--end", help="end time (ISO 8601, UTC)")
    p.add_argument("--param", action="append", type=_param, default=[], metavar="K=V", help="a query parameter")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")

    p = _add(sub, "kql", query_commands.kql, "print the rendered KQL of a catalogue query, as it would be sent")
    p.add_argument("name")
    p.add_argument("--since")
    p.add_argument("--start")
    p.add_argument("--end")
    p.add_argument("--param", action="append", type=_param, default=[], metavar="K=V")

    p = _add(sub, "explain-429", query_commands.explain_429, "which limit each 429 burst hit, and who called")
    p.add_argument("--deployment", help="one deployment (default: every deployment)")
    p.add_argument("--since", help="how far back, e.g. 1h, 7d (default 24h)")
    p.add_argument("--start", help="start time (ISO 8601, UTC)")
    p.add_argument("--end", help="end time (ISO 8601, UTC)")
    p.add_argument("--min-429", type=int, default=10, help="429s a minute needs to count as a burst (default 10)")
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = _add(
        sub,
        "inventory",
        query_commands.inventory,
        "every Azure OpenAI and AI Services account, its deployments and logs, and what to fix",
    )
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")

    cost = sub.add_parser("cost", help="costs and allocation", description="costs and allocation")
    cost_sub = cost.add_subparsers(dest="cost_command", metavar="SUBCOMMAND", required=True)
    p = _add(cost_sub, "report", cost_commands.cost_report, "monthly chargeback statement")
    p.add_argument("--month", help="YYYY-MM (default: the current month)")
    p.add_argument("--by", choices=("team", "feature", "deployment", "cost-center"), default="team")
    p.add_argument("--format", choices=("table", "csv", "focus"), default="table")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")

    p = _add(
        cost_sub, "export", cost_commands.cost_export, "a month of the ledger as FOCUS 1.2, to a folder or a FinOps hub"
    )
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--format", choices=("focus-csv", "focus-parquet"), default="focus-parquet")
    p.add_argument(
        "--to", help="a folder (default <data_dir>/exports) or https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX"
    )

    p = _add(
        cost_sub,
        "reconcile",
        billing.cost_reconcile,
        "the ledger's estimate beside the bill (Cost Management), per day and meter",
    )
    p.add_argument("--month", help="YYYY-MM (default: the current month)")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.add_argument(
        "--cost-type", choices=("actual", "amortized"), default="actual", help="the bill's ActualCost or AmortizedCost"
    )

    ledger = cost_sub.add_parser("ledger", help="the hourly cost ledger", description="the hourly cost ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND", required=True)
    p = _add(
        ledger_sub, "status", cost_commands.ledger_status, "what the ledger holds: closed hours, last build, health"
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p = _add(ledger_sub, "build", cost_commands.ledger_build, "close every hour that is due and not closed yet")
    p.add_argument("--since", help="how far back to close hours, e.g. 30d (default: ledger.backfill_days)")
    p = _add(ledger_sub, "rebuild", cost_commands.ledger_rebuild, "build a month's closed hours again, recorded")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--reason", default="", help="why (recorded with the rebuild), e.g. 'price override'")

    prices = sub.add_parser("prices", help="the price snapshot", description="the price snapshot")
    prices_sub = prices.add_subparsers(dest="prices_command", metavar="SUBCOMMAND", required=True)
    p = _add(
        prices_sub,
        "refresh",
        cost_commands.prices_refresh,
        "pull the Azure Retail Prices API into a dated local snapshot",
    )
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    p = _add(prices_sub, "show", cost_commands.prices_show, "prices by deployment type and every meter behind them")
    p.add_argument("model")
    p.add_argument("--region", default="eastus")

    imp = sub.add_parser("import", help="load records from elsewhere", description="load records from elsewhere")
    imp_sub = imp.add_subparsers(dest="import_command", metavar="SUBCOMMAND", required=True)
    p = _add(imp_sub, "archive", query_commands.import_archive, "load diagnostic-settings archives from Blob Storage")
    p.add_argument("--account-url", help="https://<account>.blob.core.windows.net (default: archive.account_url)")
    p.add_argument("--since", help="how far back the first import reaches, e.g. 7d (default: archive.since_days)")

    probe = sub.add_parser("probe", help="synthetic probes", description="synthetic probes")
    probe_sub = probe.add_subparsers(dest="probe_command", metavar="SUBCOMMAND", required=True)
    p = _add(probe_sub, "run", alert_commands.probe_run, "run the probes")
    p.add_argument("--once", action="store_true", help="run every probe once and exit")

    al = sub.add_parser("alerts", help="alert rules and channels", description="alert rules and channels")
    al_sub = al.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND", required=True)
    p = _add(al_sub, "evaluate", alert_commands.alerts_evaluate, "evaluate the alert rules")
    p.add_argument("--once", action="store_true", help="evaluate once and exit")
    p = _add(al_sub, "test", alert_commands.alerts_test, "send a test notification to a channel")
    p.add_argument("channel")

    _add(sub, "scheduler", alert_commands.scheduler, "run the scheduler alone (probes, alerts, ingestion)")

    p = _add(sub, "simulator", alert_commands.simulator, "the local Azure OpenAI simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8070)

    _add(
        sub,
        "check-config",
        query_commands.check_config,
        "validate configuration; say exactly what is wrong and where",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("azure", "urllib3", "httpx", "httpx2", "werkzeug", "apscheduler.executors", "waitress"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        handler: Handler = args.handler
        return handler(args)
    except ConfigError as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
