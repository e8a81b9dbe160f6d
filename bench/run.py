"""`python -m bench.run`: seed the bench workspaces, time every page our way and the naive way, load the
server, and write bench/results.json and the table in bench/README.md.

    python -m bench.run                          # 1M and 10M requests over 30 days (the full run)
    python -m bench.run --sizes 1000000          # one size, quicker
    python -m bench.run --sizes 20000 --runs 2 --no-server --out /tmp/r.json   # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import seeding
from bench.child import run_child
from bench.pages import PAGES, STORE_ONLY

HERE = Path(__file__).resolve().parent
TARGETS = {
    "cold_s": 3.0,
    "cold_cost_pages_s": 2.0,  # Overview and Cost, which read the cost ledger (issue 12)
    "ledger_first_build_s": 60.0,
    "ledger_first_build_mb": 2048.0,
    "ledger_catch_up_s": 1.0,
    "warm_s": 0.1,
    "speedup": 5.0,
    "memory_ratio": 0.1,
    "seed_requests_per_s": 20_000,
    "rows_per_view": 5_000,
    "load_p95_s": 1.5,
    "answer_bytes": 150_000,
}


def log(msg: str) -> None:
    print(msg, flush=True)


def stamp() -> dict[str, str]:
    """When and from which commit a measurement was taken (kept with it when runs are merged)."""
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=HERE.parent, capture_output=True, text=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": (commit.stdout.strip() or "unknown") + ("+changes" if dirty.stdout.strip() else ""),
    }


def extrapolate(results: dict[str, Any]) -> dict[str, Any]:
    """Linear growth from the two largest sizes to 100M requests a month (what the ledger makes linear:
    its build reads each hour once; pages read closed hours, which grow with callers, not requests)."""
    sizes = sorted(int(k) for k in results["sizes"])
    if len(sizes) < 2:
        return {}
    lo, hi = results["sizes"][str(sizes[-2])], results["sizes"][str(sizes[-1])]
    n_lo, n_hi, target = sizes[-2], sizes[-1], 100_000_000

    def line(a: float, b: float) -> float:
        return round(b + (b - a) * (target - n_hi) / (n_hi - n_lo), 2)

    out: dict[str, Any] = {"requests": target, "from": [n_lo, n_hi]}
    if "ledger" in lo and "ledger" in hi:
        for k in ("first_build_s", "first_build_peak_rss_mb", "ledger_mb", "catch_up_s"):
            out[f"ledger_{k}"] = line(lo["ledger"][k], hi["ledger"][k])
    for page in ("overview", "cost"):
        if page in lo["pages"] and page in hi["pages"]:
            out[f"{page}_cold_s"] = line(lo["pages"][page]["cold_median_s"], hi["pages"][page]["cold_median_s"])
    return out


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "",
        )
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],  # other work on the machine skews timings
        "versions": {
            p: version(p) for p in ("aoai-lens", "duckdb", "duckdb-kql", "pandas", "numpy", "dash", "waitress")
        },
    }


def compare(ours: dict[str, Any], naive: dict[str, Any]) -> dict[str, Any]:
    """Key by key equality of the page's aggregates; the differing keys when not equal."""
    keys = sorted(ours)
    diff = [k for k in keys if ours[k] != naive.get(k)]
    return {"equal": not diff and bool(keys), "compared": keys, "differ": diff}


def bench_size(ws: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    path = ws["path"]
    data_dir = str(Path(args.data_dir) / "data")
    now = ws["end"]
    out: dict[str, Any] = {"workspace": ws, "range": args.range, "pages": {}, "measured": stamp()}
    log("  cost ledger: first build in a new process ...")
    first = run_child("bench.ledger:first_build", {"path": path, "data_dir": data_dir, "now": now, "days": args.days})
    catch = run_child("bench.ledger:catch_up", {"path": path, "data_dir": data_dir, "now": now})
    out["ledger"] = {
        "first_build_s": round(first["answer"]["seconds"], 2),
        "first_build_peak_rss_mb": round(first["peak_rss_mb"], 1),
        "hours": first["answer"]["hours"],
        "rows": first["answer"]["rows"],
        "ledger_mb": first["answer"]["ledger_mb"],
        "window_min": first["answer"]["window_min"],
        "catch_up_s": round(catch["answer"]["seconds"], 3),
        "catch_up_hours": catch["answer"]["hours"],
    }
    lg = out["ledger"]
    log(
        f"    first build {lg['first_build_s']} s ({lg['hours']} hours, {lg['rows']:,} rows, {lg['ledger_mb']} MB), "
        f"peak {lg['first_build_peak_rss_mb']} MB; one-hour catch-up {lg['catch_up_s']} s"
    )
    # the pages read the ledger as the first build left it (the catch-up's extra hour is removed)
    run_child("bench.ledger:first_build", {"path": path, "data_dir": data_dir, "now": now, "days": args.days})
    for page in args.pages:
        log(f"  page {page}: our path, {args.runs} new processes, each a first view and {args.runs} warm ...")
        children = [
            run_child(
                "bench.pages:measure",
                {
                    "path": path,
                    "data_dir": data_dir,
                    "page": page,
                    "rng": args.range,
                    "now": now,
                    "runs": args.runs,
                    "aggregates": i == 0,
                },
            )
            for i in range(args.runs)
        ]
        ours = children[0]
        o = ours["answer"]
        cold = [c["answer"]["cold_s"] for c in children]
        warm = [w for c in children for w in c["answer"]["warm_s"]]
        o["cold_median_s"] = statistics.median(cold)
        o["warm_median_s"] = statistics.median(warm)
        rec: dict[str, Any] = {
            "cold_median_s": round(o["cold_median_s"], 4),
            "warm_median_s": round(o["warm_median_s"], 5),
            "cold_runs_s": [round(x, 4) for x in cold],
            "warm_runs_s": [round(x, 5) for x in warm],
            "cold_figures_median_s": round(statistics.median(c["answer"]["cold_figures_s"] for c in children), 4),
            "warm_figures_median_s": round(
                statistics.median(x for c in children for x in c["answer"]["warm_figures_s"]), 5
            ),
            "imports_median_s": round(statistics.median(c["answer"]["imports_s"] for c in children), 3),
            "peak_rss_mb": round(max(c["peak_rss_mb"] for c in children), 1),
            "queries_per_view": o["queries_per_view"],
            "rows_transferred_per_view": o["rows_transferred_per_view"],
            "answers_rows": o["answers"],
        }
        log(
            f"    cold {rec['cold_median_s']:.3f} s, warm {rec['warm_median_s'] * 1000:.1f} ms, peak {rec['peak_rss_mb']} MB, {rec['queries_per_view']} queries / {rec['rows_transferred_per_view']} rows per view"
        )
        if page not in STORE_ONLY:
            try:
                la = run_child(
                    "bench.loganalytics:measure_la",
                    {"path": path, "data_dir": data_dir, "page": page, "rng": args.range, "now": now},
                )["answer"]
                rec["log_analytics"] = la
                log(
                    f"    Log Analytics (local server, real LogsQueryClient): {la['queries_sent']} queries in "
                    f"{la['http_requests']} HTTP requests, {la['rows_transferred']:,} rows per view"
                )
            except RuntimeError as e:
                rec["log_analytics"] = {"failed": str(e)}
                log(f"    Log Analytics measurement FAILED: {e}")
        if page not in STORE_ONLY and args.naive_runs > 0:
            runs = []
            answer: dict[str, Any] = {}
            failure = None
            for i in range(args.naive_runs):
                log(f"  page {page}: naive baseline run {i + 1}/{args.naive_runs} ...")
                try:
                    n = run_child(
                        "bench.naive:page_capped",
                        {"path": path, "data_dir": data_dir, "page": page, "rng": args.range, "now": now},
                    )
                except RuntimeError as e:  # e.g. MemoryError under the baseline's memory cap
                    failure = f"{e} (the naive baseline could not finish under a cap of 80% of the machine's memory)"
                    break
                runs.append(n)
                answer = n["answer"]
            if failure:
                rec["baseline"] = {"failed": failure}
                log(f"    naive baseline FAILED: {failure}")
                out["pages"][page] = rec
                continue
            base_s = statistics.median(r["wall_s"] for r in runs)
            base_mb = max(r["peak_rss_mb"] for r in runs)
            check = compare(o["aggregates"], {k: v for k, v in answer.items() if k != "rows_pulled"})
            rec["baseline"] = {
                "median_s": round(base_s, 4),
                "runs_s": [round(r["wall_s"], 4) for r in runs],
                "peak_rss_mb": round(base_mb, 1),
                "rows_pulled": answer.get("rows_pulled"),
                "speedup_cold": round(base_s / o["cold_median_s"], 2),
                "speedup_warm": round(base_s / o["warm_median_s"], 1) if o["warm_median_s"] else None,
                "memory_ratio": round(ours["peak_rss_mb"] / base_mb, 3),
                "same_numbers": check,
            }
            rec["aggregates"] = o["aggregates"]
            log(
                f"    naive {base_s:.3f} s, peak {base_mb:.0f} MB -> {rec['baseline']['speedup_cold']}x cold, "
                f"memory ratio {rec['baseline']['memory_ratio']}, same numbers: {check['equal']}"
            )
            if not check["equal"]:
                log(f"    !! numbers differ: {check['differ']}")
        out["pages"][page] = rec
    return out


def verdicts(results: dict[str, Any]) -> list[str]:
    """Each target against the largest size measured: met, or missed by how much."""
    lines = []
    for size, r in results["sizes"].items():
        ws = r["workspace"]
        rate = ws["seed_requests_per_s"]
        lines.append(
            f"{size}: seeding {rate:,}/s vs {TARGETS['seed_requests_per_s']:,}/s: "
            + (
                "met"
                if rate >= TARGETS["seed_requests_per_s"]
                else f"missed by {TARGETS['seed_requests_per_s'] - rate:,}/s"
            )
        )
        lg = r.get("ledger")
        if lg:
            for what, got, want, unit in (
                ("ledger first build", lg["first_build_s"], TARGETS["ledger_first_build_s"], "s"),
                ("ledger first build peak", lg["first_build_peak_rss_mb"], TARGETS["ledger_first_build_mb"], "MB"),
                ("one-hour catch-up", lg["catch_up_s"], TARGETS["ledger_catch_up_s"], "s"),
            ):
                lines.append(
                    f"{size}: {what} {got} {unit} vs {want} {unit}: "
                    + ("met" if got <= want else f"MISSED ({got / want:.3f}x the target)")
                )
        for page, p in r["pages"].items():
            bits = []
            c, w = p["cold_median_s"], p["warm_median_s"]
            want = TARGETS["cold_cost_pages_s"] if page in ("overview", "cost") else TARGETS["cold_s"]
            bits.append(f"cold {c:.3f}s vs {want}s " + ("ok" if c <= want else f"MISS {c / want:.3f}x"))
            if "cold_figures_median_s" in p:
                bits.append(
                    f"of which figures {p['cold_figures_median_s']:.3f}s cold, {p['warm_figures_median_s'] * 1000:.0f}ms warm"
                )
            bits.append(
                f"warm {w * 1000:.0f}ms " + ("ok" if w <= TARGETS["warm_s"] else f"MISS x{w / TARGETS['warm_s']:.1f}")
            )
            la = p.get("log_analytics") or {}
            rows = la.get("rows_transferred", p["rows_transferred_per_view"])
            bits.append(
                f"rows {rows:,} "
                + ("ok" if rows <= TARGETS["rows_per_view"] else f"MISS x{rows / TARGETS['rows_per_view']:.1f}")
            )
            b = p.get("baseline")
            if b and b.get("failed"):
                bits.append("naive baseline failed (ran out of memory): speedup and memory ratio not measurable")
            elif b:
                bits.append(
                    f"speedup {b['speedup_cold']}x " + ("ok" if b["speedup_cold"] >= TARGETS["speedup"] else "MISS")
                )
                bits.append(
                    f"memory {b['memory_ratio']} " + ("ok" if b["memory_ratio"] <= TARGETS["memory_ratio"] else "MISS")
                )
                bits.append("same numbers" if b["same_numbers"]["equal"] else "NUMBERS DIFFER")
            lines.append(f"{size} {page}: " + ", ".join(bits))
    for srv in results.get("servers", []):
        ld = srv["load"]
        head = f"{srv['size']} server ({srv.get('workers', 1)} workers, {ld['users']} users)"
        lines.append(
            f"{head}: errors {ld['errors']} "
            + ("ok" if ld["errors"] == 0 else "MISS")
            + f", p95 {ld['p95_s']:.3f}s vs {TARGETS['load_p95_s']}s "
            + ("ok" if ld["p95_s"] <= TARGETS["load_p95_s"] else f"MISS {ld['p95_s'] / TARGETS['load_p95_s']:.3f}x")
            + f", {ld['requests_per_s']} requests/s"
        )
        ov = (srv.get("answer_sizes") or {}).get("ov")
        if ov:
            lines.append(
                f"{head}: Overview answer {ov['json_bytes']:,} bytes JSON ({ov['wire_bytes']:,} on the wire) vs "
                f"{TARGETS['answer_bytes']:,}: " + ("ok" if ov["json_bytes"] <= TARGETS["answer_bytes"] else "MISS")
            )
        for page, w in (srv.get("warm_server_s") or {}).items():
            lines.append(
                f"{head}: {page} warm {w * 1000:.1f}ms vs {TARGETS['warm_s'] * 1000:.0f}ms: "
                + ("ok" if w <= TARGETS["warm_s"] else f"MISS {w / TARGETS['warm_s']:.3f}x")
            )
    return lines


def table(results: dict[str, Any]) -> str:
    rows = [
        "| size | page | cold (median) | warm (median) | naive | speedup cold | peak MB ours / naive | rows per view | Log Analytics queries / rows per view | same numbers |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, r in results["sizes"].items():
        for page, p in r["pages"].items():
            b = p.get("baseline") or {}
            if b.get("failed"):
                b = {}
            rows.append(
                f"| {int(size):,} | {page} | {p['cold_median_s']:.2f} s | {p['warm_median_s'] * 1000:.0f} ms | "
                + (
                    f"{b['median_s']:.2f} s | {b['speedup_cold']}x | {p['peak_rss_mb']:.0f} / {b['peak_rss_mb']:.0f} |"
                    if b
                    else "n/a | n/a | " + f"{p['peak_rss_mb']:.0f} / n/a |"
                )
                + f" {p['rows_transferred_per_view']:,} | "
                + (
                    f"{p['log_analytics']['queries_sent']} / {p['log_analytics']['rows_transferred']:,} | "
                    if "queries_sent" in (p.get("log_analytics") or {})
                    else "n/a | "
                )
                + ("yes" if b and b["same_numbers"]["equal"] else ("n/a" if not b else "NO"))
                + " |"
            )
    rows.append("")
    rows.append(
        "| size | measured (commit) | ledger first build | its peak MB | hours / rows / MB | one-hour catch-up |"
    )
    rows.append("|---|---|---|---|---|---|")
    for size, r in results["sizes"].items():
        lg = r.get("ledger")
        m = r.get("measured", {})
        if lg:
            rows.append(
                f"| {int(size):,} | {m.get('date', '?')} ({m.get('commit', '?')}) | {lg['first_build_s']} s | "
                f"{lg['first_build_peak_rss_mb']:.0f} | {lg['hours']} / {lg['rows']:,} / {lg['ledger_mb']} | {lg['catch_up_s']} s |"
            )
    x = results.get("extrapolated_100m") or {}
    if x:
        rows.append("")
        rows.append(
            "Extrapolated to 100M requests a month (linear from "
            + " and ".join(f"{n:,}" for n in x["from"])
            + "): "
            + ", ".join(f"{k} {v}" for k, v in x.items() if k not in ("requests", "from"))
            + "."
        )
    rows.append("")
    rows.append("| size | seeding | seed peak MB | file MB |")
    rows.append("|---|---|---|---|")
    for size, r in results["sizes"].items():
        ws = r["workspace"]
        rows.append(
            f"| {int(size):,} | {ws['seed_requests_per_s']:,} requests/s ({ws['seed_wall_s']} s) | {ws['seed_peak_rss_mb']:.0f} | {ws['file_mb']:.0f} |"
        )
    for s in results.get("servers", []):
        ld = s["load"]
        rows.append("")
        rows.append(
            f"Server ({s['size']:,} requests, range {s['range']}, {s.get('workers', 1)} worker(s), {s.get('cache', 'memory')} cache): "
            f"peak RSS {s['peak_rss_mb']:.0f} MB (largest process) after serving every page and the load test; "
            f"load: {ld['users']} users for {ld['seconds']} s, {ld['requests']:,} page-data requests ({ld['requests_per_s']}/s), "
            f"{ld['errors']} errors, p50 {ld['p50_s'] * 1000:.0f} ms, p95 {ld['p95_s'] * 1000:.0f} ms."
        )
        if s.get("answer_sizes"):
            rows.append(
                "Answers (JSON / on the wire with gzip): "
                + ", ".join(
                    f"{p} {v['json_bytes'] / 1024:.0f} / {v['wire_bytes'] / 1024:.0f} KB"
                    for p, v in s["answer_sizes"].items()
                )
                + "; warm server time: "
                + ", ".join(f"{p} {v * 1000:.0f} ms" for p, v in s.get("warm_server_s", {}).items())
                + "."
            )
    return "\n".join(rows) + "\n"


def write_readme(results: dict[str, Any], path: Path) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    block = (
        f"{start}\nMeasured {results['date']} on {results['machine']['cpus']} CPUs ({results['machine']['cpu']}), {results['machine']['memory_gb']} GB; range {results['range']}.\n\n{table(results)}\n```\n"
        + "\n".join(results["verdicts"])
        + f"\n```\n{end}"
    )
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", default="1000000,10000000", help="requests per workspace, comma separated")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--range", default="24h", help="the pages' time range (24h is the dashboard's default)")
    p.add_argument("--runs", type=int, default=5, help="cold and warm runs per page (median reported)")
    p.add_argument("--naive-runs", type=int, default=3, help="baseline runs per page (0: skip the baseline)")
    p.add_argument("--pages", default=",".join(PAGES), help="pages to measure")
    p.add_argument("--data-dir", default=".aoai-lens/bench", help="where the bench workspaces live")
    p.add_argument("--max-age-hours", type=float, default=24.0, help="reseed a workspace older than this")
    p.add_argument("--no-server", action="store_true", help="skip the server memory and load test")
    p.add_argument("--users", type=int, default=30)
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers for the load test (Redis shared cache)")
    p.add_argument("--load-seconds", type=float, default=60.0)
    p.add_argument("--merge", action="store_true", help="keep the other sizes (and server) already in --out")
    p.add_argument("--out", default=str(HERE / "results.json"))
    p.add_argument("--readme", default=str(HERE / "README.md"), help="README to update ('' to skip)")
    args = p.parse_args(argv)
    args.pages = [x for x in args.pages.split(",") if x]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    now = datetime.now(UTC)
    results: dict[str, Any] = {
        **stamp(),
        "machine": machine(),
        "range": args.range,
        "runs": args.runs,
        "naive_runs": args.naive_runs,
        "targets": TARGETS,
        "sizes": {},
    }
    for size in sizes:
        log(f"== {size:,} requests over {args.days} days")
        ws = seeding.ensure(Path(args.data_dir), size, args.days, max_age=timedelta(hours=args.max_age_hours), now=now)
        results["sizes"][str(size)] = bench_size(ws, args)
    if not args.no_server:
        from bench.server import serve_and_load

        servers = []
        for size in sizes:
            ws = results["sizes"][str(size)]["workspace"]
            log(
                f"== server on the {size:,} workspace ({args.workers} workers): every page, then {args.users} users "
                f"for {args.load_seconds:.0f} s ..."
            )
            s = serve_and_load(
                Path(ws["path"]),
                Path(args.data_dir) / f"server-data-{size}",
                users=args.users,
                seconds=args.load_seconds,
                rng=args.range,
                max_per_user=100_000,
                workers=args.workers,
            )
            s["size"] = size
            s["measured"] = stamp()
            s["note"] = (
                "the server's 'now' is the wall clock, so a workspace seeded hours ago shows fewer requests in the range"
            )
            servers.append(s)
            ld = s["load"]
            log(
                f"    peak RSS {s['peak_rss_mb']} MB; {ld['requests']} requests, {ld['errors']} errors, "
                f"p95 {ld['p95_s'] * 1000:.0f} ms; answers {s['answer_sizes']}"
            )
        results["servers"] = servers
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.merge and Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
        merged = {**old.get("sizes", {}), **results["sizes"]}
        results["sizes"] = {k: merged[k] for k in sorted(merged, key=int)}
        servers = {s["size"]: s for s in old.get("servers", [])}
        servers.update({s["size"]: s for s in results.get("servers", [])})
        if servers:
            results["servers"] = [servers[k] for k in sorted(servers)]
        results["earlier_runs"] = sorted(
            {f"{old.get('date', '')} {old.get('commit', '')}".strip(), *old.get("earlier_runs", [])} - {""}
        )
    results["extrapolated_100m"] = extrapolate(results)
    results["verdicts"] = verdicts(results)
    Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"wrote {args.out}")
    if args.readme:
        write_readme(results, Path(args.readme))
        log(f"updated {args.readme}")
    for line in results["verdicts"]:
        log("  " + line)
    differ = [
        pg
        for r in results["sizes"].values()
        for pg, v in r["pages"].items()
        if v.get("baseline", {}).get("same_numbers") and not v["baseline"]["same_numbers"]["equal"]
    ]
    return 1 if differ or any(s["load"]["errors"] for s in results.get("servers", [])) else 0


if __name__ == "__main__":
    sys.exit(main())
