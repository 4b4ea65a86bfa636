#!/usr/bin/env python3
"""Per-round ratio table of a committed benchmark run, in the form README.md shows.

    python3 scripts/readme-table.py [RESULTS_DIR]     # default bench/results

Current-thread ratios come from raw.jsonl (each round's blitz-ct against tokio-ct and
the mio loop, same alternating-slices run). Multi-thread ratios come from REPORT.md's
"Multi-thread sliced run" tables (2 workers get their own, longer slices, with blitz-ct
alongside); where a workload has none (HTTP), from raw.jsonl.
"""
import collections
import json
import os
import re
import statistics
import sys

WORKLOADS = [
    ("echo-64-c1", "TCP echo 64 B, 1 conn"),
    ("echo-64-c50", "TCP echo 64 B, 50 conns"),
    ("echo-64-c500", "TCP echo 64 B, 500 conns"),
    ("echo-16k-c50", "TCP echo 16 KiB, 50 conns"),
    ("http-c50", "HTTP keep-alive, 50 conns (wrk)"),
    ("udp-64", "UDP ping-pong 64 B"),
    ("unix-64-c1", "Unix echo 64 B"),
    ("churn-c16", "connect + round trip + close"),
]


def per_round(rows, wl, a, b):
    by = collections.defaultdict(dict)
    for r in rows:
        if r.get("bench_workload") == wl and r.get("rps"):
            by[r["round"]][r["contender"]] = r["rps"]
    return [d[a] / d[b] for _, d in sorted(by.items()) if a in d and b in d]


def report_rows(report, wl):
    """{ratio name: ([per-round values], median)} from the workload's multi-thread sliced
    table (the median as REPORT.md gives it, computed from unrounded values)."""
    m = re.search(r"\(`%s`\)(.*?)(?=\n## |\Z)" % re.escape(wl), report, re.S)
    out = {}
    if not m:
        return out
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and "/" in cells[0] and re.match(r"^[\d., ]+$", cells[1]):
            out[cells[0]] = ([float(x) for x in cells[1].split(",")], float(cells[2]))
    return out


def fmt_rounds(v, med=None):
    if not v:
        return "—"
    return "%s (**%.2f**)" % (" ".join("%.2f" % x for x in v), statistics.median(v) if med is None else med)


def fmt_range(v, med=None):
    if not v:
        return "—"
    return "**%.2f** (%.2f–%.2f)" % (statistics.median(v) if med is None else med, min(v), max(v))


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "bench", "results")
    rows = [json.loads(l) for l in open(os.path.join(d, "raw.jsonl")) if l.strip()]
    report = open(os.path.join(d, "REPORT.md")).read()
    print("| workload | current-thread / tokio | current-thread / mio loop | 2 workers / tokio | 2 workers / current-thread (same run) |")
    print("| --- | --- | --- | --- | --- |")
    for wl, name in WORKLOADS:
        rep = report_rows(report, wl)
        mt_tokio = rep.get("blitz-mt / tokio-mt") or (per_round(rows, wl, "blitz-mt", "tokio-mt"), None)
        mt_ct = rep.get("blitz-mt / blitz-ct", ([], None))
        print("| %s | %s | %s | %s | %s |" % (
            name,
            fmt_rounds(per_round(rows, wl, "blitz-ct", "tokio-ct")),
            fmt_rounds(per_round(rows, wl, "blitz-ct", "mio")),
            fmt_rounds(*mt_tokio),
            fmt_range(*mt_ct),
        ))
    cpu = collections.defaultdict(dict)
    for r in rows:
        if r.get("bench_workload") in ("echo-64-c1", "echo-64-c50") and r.get("server_cpu_us_per_rt"):
            cpu[(r["bench_workload"], r["round"])][r["contender"]] = r["server_cpu_us_per_rt"]
    for wl in ("echo-64-c1", "echo-64-c50"):
        v = [c["blitz-ct"] / c["mio"] for (w, _), c in sorted(cpu.items()) if w == wl and "blitz-ct" in c and "mio" in c]
        if v:
            print("\nserver CPU per round trip, blitz-ct / mio, %s: %s" % (wl, fmt_rounds(v)))


if __name__ == "__main__":
    main()
