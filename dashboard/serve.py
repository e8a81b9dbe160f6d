"""`aoai-lens serve`: the dashboard; with one worker, the scheduler runs in the same process by default.

- One worker (default): waitress serves the app, and the scheduler (probes, alerts, ingestion) runs in
  this process unless `--no-scheduler` or `scheduler.enabled = false`.
- `--workers N` (N > 1): gunicorn runs N worker processes, each building the app with
  `dashboard.app:server_factory`. No worker runs the scheduler: it must run once, as
  `aoai-lens scheduler`, or every worker would probe and notify. Without `cache.backend = "redis"` each
  worker keeps its own cache (the same query runs once per worker): a warning says so.

Access: with `dashboard.auth = "none"` the dashboard binds only to loopback; a non-loopback address is
refused (exit 2) unless `--no-auth` says on purpose that anyone who can reach it may see everything.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from typing import Any

from queries.config import Settings, get_settings, user_password_problems
from queries.exitcodes import EXIT_OK, EXIT_USAGE

log = logging.getLogger("aoai_lens.serve")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def access_problem(settings: Settings, host: str, no_auth: bool) -> str | None:
    """Why this bind must not start (None: it may)."""
    problems = user_password_problems(settings)
    if problems:
        return "serve: basic auth cannot start: " + "; ".join(problems)
    if is_loopback(host) or settings.dashboard.auth != "none" or no_auth:
        return None
    return (
        f"serve: refusing to bind {host}: with no auth mode the dashboard binds only to loopback. "
        "Set dashboard.auth (basic or appservice), or pass --no-auth to expose it unauthenticated."
    )


def appservice_warning(settings: Settings, host: str, port: int) -> str | None:
    """App Service mode trusts the X-MS-CLIENT-PRINCIPAL header the platform adds; anyone who can reach
    the port directly can forge it. On a non-loopback address, say which restriction must stop that."""
    if settings.dashboard.auth != "appservice" or is_loopback(host):
        return None
    return (
        f"serve: WARNING: auth = 'appservice' on {host}:{port} trusts the X-MS-CLIENT-PRINCIPAL header. Only the "
        "platform's authentication front end may reach this port: on App Service set access restrictions "
        "(allow only the front end, deny all else) and keep authentication required; on Container Apps keep "
        "ingress external only through the authenticated app and add IP restrictions; never publish the "
        "container port directly. See docs/production.md."
    )


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    host = args.host or settings.dashboard.host
    port = args.port or settings.dashboard.port
    workers = getattr(args, "workers", 1) or 1
    no_auth = bool(getattr(args, "no_auth", False))
    if workers < 1:
        print("serve: --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    problem = access_problem(settings, host, no_auth)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    warning = appservice_warning(settings, host, port)
    if warning:
        print(warning, file=sys.stderr)
    if no_auth and settings.dashboard.auth == "none" and not is_loopback(host):
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
        from alerts.backfill import ensure_backfilled

        report = ensure_backfilled(settings)  # the seeded month's probe and alert history, once per workspace
        if not report.skipped:
            print(report, file=sys.stderr)
    if workers > 1:
        return _run_gunicorn(settings, host, port, workers)
    return _run_waitress(settings, host, port, no_scheduler=bool(getattr(args, "no_scheduler", False)))


def _run_waitress(settings: Settings, host: str, port: int, *, no_scheduler: bool) -> int:
    from waitress import serve

    from dashboard.app import create_app

    scheduler = None
    if settings.scheduler.enabled and not no_scheduler:
        from alerts.scheduler import start_in_process

        scheduler = start_in_process(settings)
    else:
        log.info("scheduler not started in this process (run `aoai-lens scheduler` for probes and alerts)")
    app = create_app(settings, scheduler=scheduler)

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


def gunicorn_options(settings: Settings, host: str, port: int, workers: int) -> dict[str, Any]:
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 120,  # a cost page over a long range can take a while on a cold cache
        "graceful_timeout": 20,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "aoai-lens",
    }


def _run_gunicorn(settings: Settings, host: str, port: int, workers: int) -> int:
    from gunicorn.app.base import BaseApplication

    if settings.cache.backend != "redis":
        log.warning(
            "serve --workers %d without a shared cache: each worker caches on its own, so the same query runs "
            "once per worker. Set cache.backend = 'redis' and cache.redis_url to share one.",
            workers,
        )
    log.info(
        "scheduler not started by the web workers: run `aoai-lens scheduler` once, as its own process, "
        "for probes, alerts and ingestion"
    )

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for k, v in gunicorn_options(settings, host, port, workers).items():
                self.cfg.set(k, v)

        def load(self) -> Any:
            from dashboard.app import server_factory

            return server_factory()

    log.info("aoai-lens dashboard on http://%s:%s/ (%d gunicorn workers)", host, port, workers)
    _App().run()
    return EXIT_OK
