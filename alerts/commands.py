"""The `aoai-lens` subcommands of the alerts package: probe, alerts, scheduler, simulator."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from types import FrameType

from queries.config import get_settings
from queries.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

log = logging.getLogger("aoai_lens.commands")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _run_blocking(groups: tuple[str, ...]) -> int:
    """Run the scheduler's jobs until SIGTERM or Ctrl-C, then shut down cleanly."""
    from alerts import runtime as rt
    from alerts import scheduler as sch

    settings = get_settings()
    runtime = rt.install(rt.Runtime(settings))
    sched = sch.build(settings, groups=groups)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: shutting the scheduler down", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        sch.start(sched)
        while not stopping.wait(1.0):
            pass
    finally:
        if sched.running:
            sched.shutdown(wait=True)
        runtime.close()
    log.info("scheduler stopped")
    return EXIT_OK


def probe_run(args: argparse.Namespace) -> int:
    if not args.once:
        return _run_blocking(("probes",))
    from alerts.runtime import Runtime

    settings = get_settings()
    if not settings.probes.targets:
        print("probe run: no probe targets configured ([[probes.targets]])", file=sys.stderr)
        return EXIT_USAGE
    runtime = Runtime(settings)
    try:
        try:
            runtime.client()
        except ValueError as e:
            print(f"probe run: {e}", file=sys.stderr)
            return EXIT_USAGE
        if runtime.simulator is not None:
            print(f"# no probes.endpoint: using the local simulator at {runtime.simulator.url}")
        for target in settings.probes.targets:
            r = runtime.probe(target)
            latency = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
            ttft = f" ttft {r.ttft_ms:.0f} ms" if r.ttft_ms is not None else ""
            detail = f" ({r.error})" if r.error else ""
            print(f"{target.deployment}\t{target.kind}\t{r.klass}\t{latency}{ttft}{detail}")
    finally:
        runtime.close()
    return EXIT_OK


def alerts_evaluate(args: argparse.Namespace) -> int:
    if not args.once:
        return _run_blocking(("alerts",))
    from alerts.runtime import Runtime

    settings = get_settings()
    runtime = Runtime(settings)
    if settings.is_demo:
        from queries.filestore import WriterBusy

        try:
            runtime.ingest()  # what a standalone simulator wrote since the last load
        except WriterBusy as e:  # the scheduler of a running `serve` is loading them right now
            print(f"# records not loaded now ({e}); judging what is loaded", file=sys.stderr)
    report = runtime.evaluate()
    for t in report.transitions:
        print(f"{_when(t.ts)}\t{t.rule}\t{t.subject}\t{t.old} -> {t.new}\t{t.reason}")
    for rule, why in report.skipped.items():
        print(f"# {rule}: not evaluated: {why}")
    firing = runtime.store.current_states()
    firing = firing[firing["state"] == "firing"]
    print(
        f"# {len(settings.alerts.rules)} rule(s), {len(report.transitions)} transition(s), "
        f"{len(firing)} firing, {sum(not d.ok for d in report.deliveries)} failed deliveries"
    )
    return EXIT_FAILED if any(not d.ok for d in report.deliveries) else EXIT_OK


def alerts_test(args: argparse.Namespace) -> int:
    from alerts.notify import Notifier

    settings = get_settings()
    names = [c.name for c in settings.alerts.channels]
    if args.channel not in names:
        print(
            f"alerts test: unknown channel {args.channel!r}; configured: {', '.join(names) or 'none'}", file=sys.stderr
        )
        return EXIT_USAGE
    from alerts.store import Store

    d = Notifier(settings.alerts.channels).send(
        args.channel, "aoai-lens test notification", "If you can read this, the channel works."
    )
    Store(settings.state_path).add_delivery(None, args.channel, time.time(), d.ok, d.error)
    if d.ok:
        print(f"alerts test: sent to {args.channel}")
        return EXIT_OK
    print(f"alerts test: {args.channel}: {d.error}", file=sys.stderr)
    return EXIT_FAILED


def scheduler(args: argparse.Namespace) -> int:
    return _run_blocking(("probes", "alerts", "ingest", "archive", "ledger"))


def simulator(args: argparse.Namespace) -> int:
    from queries.demo import simulator as sim

    settings = get_settings()
    key = settings.probes.api_key.get_secret_value() if settings.probes.api_key else None
    archive = settings.data_dir / "diagnostics"  # insights-logs-<category>/resourceId=.../PT1H.json
    try:
        server = sim.SimulatorServer(sim.Simulator(archive_dir=archive, api_key=key), args.host, args.port)
    except OSError as e:
        print(f"simulator: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"local Azure OpenAI simulator on {server.url} (records to {archive}); "
        f"{'api-key must match AOAI_LENS_PROBES__API_KEY' if key else 'any api-key or bearer token accepted'}"
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def demo_seed(args: argparse.Namespace) -> int:
    """`demo seed`: build the workspace (queries.commands), then backfill its month's probe and alert
    history into the state store, so the Probes and Alerts pages tell the month on first open. A
    workspace written elsewhere (`--path`) is not the one the store describes: no backfill then."""
    from alerts.backfill import ensure_backfilled
    from queries import commands as query_commands
    from queries.config import load_settings

    code = query_commands.demo_seed(args)
    if code != EXIT_OK or args.path:
        return code
    report = ensure_backfilled(load_settings())
    print(report)
    return EXIT_OK
