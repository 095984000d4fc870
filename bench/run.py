#!/usr/bin/env python3
"""aws-flightsql benchmarks: prints a table of figures (see README "Performance").

Every figure comes from one run against the same release binaries of the EC2 emulator and
the server, on this machine, with latency injected by the emulator where named:

1. fan-out: SELECT * over 16 regions x 1,000 tasks, 50 ms per call, against the critical
   path (5 pages x 50 ms) and against asking the regions one by one;
2. time to the first record batch of that query;
3. throughput: 200,000 tasks in one region, no latency: ADBC into a pyarrow Table, boto3's
   paginator into a pandas DataFrame, and the AWS CLI, with the CPU each process used per
   page in the ADBC run;
4. the server's peak RSS while streaming 1,000,000 rows;
5. pushdown: amiId IN (5 ids) over 16 regions against the same answer from a full scan.

Usage: bench/run.py [--quick]   (scripts/bench.sh builds the binaries and the virtualenvs)
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flightsql
import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

BIN_DIR = os.environ.get(
    "AWS_FLIGHTSQL_BIN_DIR", os.path.expanduser("~/.cache/aws-flightsql/target/release")
)
AWS_CLI = os.environ.get("AWS_CLI", shutil.which("aws") or "aws")
REGIONS_16 = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2",
    "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1",
    "ap-northeast-2", "ap-southeast-1", "ap-southeast-2", "ca-central-1", "sa-east-1",
]
ENV = dict(
    os.environ,
    AWS_ACCESS_KEY_ID="AKIDBENCH",
    AWS_SECRET_ACCESS_KEY="bench-secret",
    AWS_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
    RUST_LOG="warn",
)


class Proc:
    """A binary started on 127.0.0.1:0; `url` is what it printed after `marker`."""

    def __init__(self, args, marker="listening on "):
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV
        )
        for line in self.proc.stdout:
            if marker in line:
                self.url = line.strip().split(marker, 1)[1].strip()
                return
        raise RuntimeError(f"{args[0]} exited early")

    def peak_rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self):
        """User and system CPU time the process has used."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def emulator(regions, tasks, latency_ms=0):
    return Proc([
        os.path.join(BIN_DIR, "ec2-emulator"), "--listen", "127.0.0.1:0",
        "--regions", ",".join(regions), "--tasks-per-region", str(tasks),
        "--latency-ms", str(latency_ms), "--freeze-time", "--seed", "11",
    ])


def server(emu, regions):
    # No response cache: every run asks the emulator. No budget of AWS calls per query:
    # the throughput runs read 1,000 and 5,000 pages in one statement.
    return Proc([
        os.path.join(BIN_DIR, "aws-flightsql"), "serve", "--listen", "127.0.0.1:0",
        "--endpoint-url", emu.url, "--regions", ",".join(regions), "--cache-ttl", "0s",
        "--max-concurrency", "64", "--max-concurrency-per-region", "8",
        "--max-aws-calls-per-query", "0",
    ])


def own_cpu_seconds():
    """CPU time of this process (the Python client and the ADBC driver in it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def hook(emu, path, method="GET"):
    req = urllib.request.Request(f"{emu.url}/_emulator/{path}", method=method)
    with urllib.request.urlopen(req) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def timed(fn, runs):
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def adbc_table(uri, sql):
    with flightsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def query_table(conn, sql):
    """Runs `sql` on an open connection, the way a BI tool or notebook does."""
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def first_batch_seconds(uri, sql):
    with flightsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        start = time.perf_counter()
        cur.execute(sql)
        reader = cur.fetch_record_batch()
        reader.read_next_batch()
        elapsed = time.perf_counter() - start
        for _ in reader:
            pass
        return elapsed


def boto3_frame(url, region):
    ec2 = boto3.client(
        "ec2", region_name=region, endpoint_url=url,
        aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret",
    )
    rows = []
    for page in ec2.get_paginator("describe_store_image_tasks").paginate():
        rows.extend(page["StoreImageTaskResults"])
    return pd.DataFrame(rows)


def aws_cli_rows(url, region):
    out = subprocess.run(
        [AWS_CLI, "ec2", "describe-store-image-tasks", "--endpoint-url", url,
         "--region", region, "--output", "json"],
        check=True, capture_output=True, env=ENV,
    ).stdout
    return len(json.loads(out)["StoreImageTaskResults"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller data")
    args = parser.parse_args()
    runs = 2 if args.quick else 5
    results = []

    def report(name, figure, target=""):
        results.append((name, figure, target))
        print(f"  {name}: {figure}  {target}", file=sys.stderr, flush=True)

    # 1, 2, 5: sixteen regions, 50 ms per call.
    emu = emulator(REGIONS_16, 1000, latency_ms=50)
    srv = server(emu, REGIONS_16)
    conn = None
    try:
        conn = flightsql.connect(srv.url, autocommit=True)
        query_table(conn, "SELECT 1")
        # The query's wall time on an open connection (connecting takes ~3 ms more).
        wall, table = timed(lambda: query_table(conn, "SELECT * FROM store_image_tasks"), runs)
        assert table.num_rows == 16 * 1000, table.num_rows
        critical = 5 * 0.050
        one_by_one, _ = timed(
            lambda: [query_table(conn, f"SELECT * FROM store_image_tasks WHERE region = '{r}'")
                     for r in REGIONS_16],
            max(1, runs // 2),
        )
        report("fan-out, 16 regions x 1,000 tasks, 50 ms/call: SELECT *",
               f"{wall * 1000:.0f} ms = {wall / critical:.2f}x the critical path "
               f"({critical * 1000:.0f} ms); regions one by one: {one_by_one * 1000:.0f} ms",
               "target <= 1.2x")
        ttfb = statistics.median(
            first_batch_seconds(srv.url, "SELECT * FROM store_image_tasks") for _ in range(runs))
        report("time to first batch, same query", f"{ttfb * 1000:.0f} ms",
               "target <= 70 ms (one call + 20 ms)")

        some = adbc_table(srv.url, "SELECT DISTINCT amiId FROM store_image_tasks "
                                   "WHERE region = 'eu-north-1' LIMIT 5").column(0).to_pylist()
        ids = ", ".join(f"'{a}'" for a in some)
        hook(emu, "requests", "DELETE")
        pushed, table_p = timed(
            lambda: adbc_table(srv.url, f"SELECT * FROM store_image_tasks WHERE amiId IN ({ids})"), 1)
        calls_pushed = len(hook(emu, "requests"))
        hook(emu, "requests", "DELETE")

        def full_scan():
            t = adbc_table(srv.url, "SELECT * FROM store_image_tasks")
            return t.filter(pc.is_in(t["amiId"], value_set=pa.array(some)))

        scanned, table_f = timed(full_scan, 1)
        calls_full = len(hook(emu, "requests"))
        assert table_p.num_rows == table_f.num_rows
        report("pushdown, amiId IN (5 ids) over 16 regions",
               f"{calls_pushed} calls, {pushed * 1000:.0f} ms; same answer by full scan: "
               f"{calls_full} calls, {scanned * 1000:.0f} ms", "")
    finally:
        if conn is not None:
            conn.close()
        srv.stop()
        emu.stop()

    # 3: throughput, one region, no latency.
    n = 50_000 if args.quick else 200_000
    emu = emulator(["us-east-1"], n)
    srv = server(emu, ["us-east-1"])
    try:
        adbc_table(srv.url, "SELECT 1")
        cpu_before = (emu.cpu_seconds(), srv.cpu_seconds(), own_cpu_seconds())
        t_adbc, table = timed(lambda: adbc_table(srv.url, "SELECT * FROM store_image_tasks"), runs)
        cpu_after = (emu.cpu_seconds(), srv.cpu_seconds(), own_cpu_seconds())
        assert table.num_rows == n
        pages = runs * n / 200
        emu_ms, srv_ms, client_ms = (
            (after - before) * 1000 / pages for before, after in zip(cpu_before, cpu_after))
        t_boto, frame = timed(lambda: boto3_frame(emu.url, "us-east-1"), 1)
        assert len(frame) == n
        if shutil.which(AWS_CLI) or os.path.exists(AWS_CLI):
            t_cli, rows = timed(lambda: aws_cli_rows(emu.url, "us-east-1"), 1)
            assert rows == n
            cli = f"; AWS CLI {n / t_cli:,.0f} rows/s ({t_cli:.1f} s)"
        else:
            cli = "; AWS CLI not installed"
        report(f"throughput, {n:,} tasks in one region",
               f"ADBC->pyarrow {n / t_adbc:,.0f} rows/s ({t_adbc:.2f} s); boto3->pandas "
               f"{n / t_boto:,.0f} rows/s ({t_boto:.1f} s) = {t_boto / t_adbc:.0f}x slower{cli}",
               "target >= 20x boto3")
        report("CPU per page of 200 rows in that ADBC run",
               f"server {srv_ms:.2f} ms, emulator {emu_ms:.2f} ms, ADBC client {client_ms:.2f} ms: "
               f"{srv_ms + emu_ms + client_ms:.2f} ms; {os.cpu_count()} cores allow at most "
               f"{200 * os.cpu_count() / (srv_ms + emu_ms + client_ms) * 1000:,.0f} rows/s", "")
    finally:
        srv.stop()
        emu.stop()

    # 4: peak RSS while streaming a million rows.
    n = 200_000 if args.quick else 1_000_000
    emu = emulator(["us-east-1"], n)
    srv = server(emu, ["us-east-1"])
    try:
        start = time.perf_counter()
        with flightsql.connect(srv.url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT * FROM store_image_tasks")
            rows = sum(batch.num_rows for batch in cur.fetch_record_batch())
        elapsed = time.perf_counter() - start
        assert rows == n, rows
        report(f"server peak RSS streaming {n:,} rows",
               f"{srv.peak_rss_mb():.0f} MB ({elapsed:.1f} s, {n / elapsed:,.0f} rows/s)",
               "target < 200 MB")
    finally:
        srv.stop()
        emu.stop()

    print("| benchmark | result | target |")
    print("|---|---|---|")
    for name, figure, target in results:
        print(f"| {name} | {figure} | {target} |")


if __name__ == "__main__":
    main()
