"""Turns the JSON summaries of `make bench` into the Markdown table of BENCHMARKS.md.

Usage: bench_table.py OUT_DIR REDIS_VERSION BENCHMARKS_MD

Replaces whatever lies between the `make bench` markers of BENCHMARKS_MD (appending the
markers if missing) with: the date, the machine, the commands, and one row per run, Tally and
redis-server side by side.
"""

import datetime
import json
import os
import platform
import subprocess
import sys

BEGIN = "<!-- make bench: begin -->"
END = "<!-- make bench: end -->"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
            memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({model}){memory}, Linux {platform.release()}"


def load(out_dir):
    runs = {}
    for name in sorted(os.listdir(out_dir)):
        if name.endswith(".json"):
            with open(os.path.join(out_dir, name)) as file:
                summary = json.load(file)
            system = name.split("-c")[0]
            options = summary["options"]
            runs[(system, options["clients"], options["read_ratio"])] = summary
    return runs


def cell(summary):
    if summary is None:
        return "| – | – | – | – |"
    errors = sum(summary["errors"].values())
    latency = summary["latency"]["all"]
    return f"| {summary['ops_per_s']:,.0f} | {latency['p50_ms']:.2f} | {latency['p99_ms']:.2f} | {errors} |"


def cost(out_dir, summary):
    """CPU microseconds per operation summed over the three nodes, and fsyncs per operation on
    the busiest node, from the samples taken around the run (warm-up included, so the
    operations are estimated as the measured rate times warm-up plus measured time)."""
    name = f"tally-c{summary['options']['clients']}-r{summary['options']['read_ratio']}"
    try:
        before = read_probe(os.path.join(out_dir, name + ".probe-before"))
        after = read_probe(os.path.join(out_dir, name + ".probe-after"))
    except (OSError, ValueError):
        return " – | – |"
    options = summary["options"]
    ops = summary["ops_per_s"] * (options["duration_s"] + options["warmup_s"])
    if ops <= 0 or not before:
        return " – | – |"
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    cpu_us = sum(after[node][0] - before[node][0] for node in before) * 1e6 / ticks_per_s / ops
    fsyncs = max(after[node][1] - before[node][1] for node in before) / ops
    return f" {cpu_us:,.0f} | {fsyncs:.2f} |"


def read_probe(path):
    probe = {}
    with open(path) as file:
        for line in file:
            node, ticks, fsyncs = line.split()
            probe[node] = (int(ticks), int(fsyncs))
    return probe


def table(runs, redis_version, out_dir):
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    any_run = next(iter(runs.values()))["options"]
    lines = [
        BEGIN,
        "",
        f"Measured {datetime.date.today().isoformat()} by `make bench` at commit {git or 'unknown'} on {machine()}.",
        "The three Tally replicas, the redis-server and the load generator share these cores.",
        "",
        f"- Tally: a fresh 3-node cluster (`scripts/run-local-cluster.sh`, every write fsynced on a majority),",
        "  loaded through all three nodes (followers forward to the leader), linearizable reads (ReadIndex).",
        f"- redis-server {redis_version}: one unreplicated node, `--appendonly yes --appendfsync always`.",
        f"- Load: `tally bench --clients C --read-ratio R --value-size-bytes {any_run['value_size_bytes']}"
        f" --keys {any_run['keys']} --duration-s {any_run['duration_s']} --warmup-s {any_run['warmup_s']}`,"
        f" closed loop, pipeline 1; JSON summaries of every run in `{out_dir}/`.",
        "- CPU µs/op: the three Tally processes' CPU time (user + system) per operation, summed;"
        " fsyncs/op: on the node that did the most. Both sampled around each run, warm-up included.",
        "",
        "| clients | read ratio | Tally ops/s | p50 ms | p99 ms | errors | CPU µs/op | fsyncs/op "
        "| redis ops/s | p50 ms | p99 ms | errors |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = sorted({(clients, ratio) for (_, clients, ratio) in runs}, key=lambda key: (key[0], -key[1]))
    for clients, ratio in keys:
        tally = runs.get(("tally", clients, ratio))
        redis = runs.get(("redis", clients, ratio))
        tally_cost = cost(out_dir, tally) if tally else " – | – |"
        lines.append(f"| {clients} | {ratio:.1f} " + cell(tally) + tally_cost + cell(redis)[1:])
    lines += ["", END]
    return "\n".join(lines)


def main():
    out_dir, redis_version, benchmarks = sys.argv[1:4]
    runs = load(out_dir)
    if not runs:
        sys.exit(f"no JSON summaries in {out_dir}")
    text = open(benchmarks).read() if os.path.exists(benchmarks) else "# Benchmarks\n"
    section = table(runs, redis_version, out_dir)
    if BEGIN in text and END in text:
        before = text.split(BEGIN)[0]
        after = text.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n## `make bench`: Tally against redis-server\n\n" + section + "\n"
    with open(benchmarks, "w") as file:
        file.write(text)
    print(section)


if __name__ == "__main__":
    main()
