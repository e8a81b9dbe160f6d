"""`aoai-lens serve`: the dashboard, with the scheduler in the same process by default."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys

from queries.settings import get_settings

log = logging.getLogger("aoai_lens.serve")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    host = args.host or settings.dashboard.host
    port = args.port or settings.dashboard.port
    if not is_loopback(host):
        if settings.dashboard.auth == "none" and not args.no_auth:
            print(
                f"serve: refusing to bind {host}: with no auth mode the dashboard binds only to loopback. "
                "Set dashboard.auth (basic or appservice), or pass --no-auth to expose it unauthenticated.",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if args.no_auth:
            log.warning(
                "serving on %s:%s WITHOUT authentication (--no-auth): anyone who can reach it sees all data", host, port
            )
    if settings.is_demo:
        from queries.demo import ensure_workspace

        ensure_workspace(
            settings.demo_path,
            days=settings.demo.days,
            requests_per_day=settings.demo.requests_per_day,
            seed=settings.demo.seed,
        )
    from waitress import serve

    from dashboard.app import create_app

    app = create_app(settings)
    scheduler = None
    if settings.scheduler.enabled and not args.no_scheduler:
        from alerts.scheduler import start_in_process

        scheduler = start_in_process(settings)
    else:
        log.info("scheduler not started in this process (run `aoai-lens scheduler` for probes and alerts)")

    def _stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    log.info("aoai-lens dashboard on http://%s:%s/", host, port)
    try:
        serve(app.server, host=host, port=port, threads=8)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if scheduler is not None:
            scheduler.shutdown()
    return EXIT_OK
