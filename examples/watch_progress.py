# %% [markdown]
# # Watching store image tasks as they run
#
# A notebook-style script (the `# %%` cells run one by one in Jupyter, VS Code or
# Spyder, or all at once with `python examples/watch_progress.py`): it starts a few store
# image tasks with INSERT, follows them with `watch_store_image_tasks` through ADBC's
# record-batch reader as the batches arrive, and plots each task's progress with
# matplotlib to a PNG.
#
# Against the demo server (`cargo run --release -- serve --demo`, whose banner names the
# Flight SQL URI and the emulator's URL):
#
#     python examples/watch_progress.py --uri grpc://127.0.0.1:50051 \
#         --emulator-url http://127.0.0.1:PORT --task-seconds 6 --out progress.png
#
# With `--emulator-url` the script reads storable AMIs and a bucket from the emulator and
# sets how long its new tasks take (`--task-seconds`; the demo's default is 60 s); without
# it, give `--ami` (repeatable) and `--bucket`. Requirements: `examples/requirements.txt`.

# %%
import argparse
import json
import sys
import time
import urllib.request
from collections import defaultdict

import adbc_driver_flightsql.dbapi as flightsql
import matplotlib

matplotlib.use("Agg")  # no display: write files only
import matplotlib.pyplot as plt  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--uri", default="grpc://127.0.0.1:50051", help="Flight SQL URI")
parser.add_argument("--emulator-url", help="the demo emulator's URL (its banner shows it)")
parser.add_argument("--region", default="us-east-1")
parser.add_argument("--tasks", type=int, default=3, help="tasks to start")
parser.add_argument("--task-seconds", type=float, default=6.0,
                    help="how long the emulator's new tasks take (with --emulator-url)")
parser.add_argument("--ami", action="append", default=[], help="AMI to store (repeatable)")
parser.add_argument("--bucket", help="bucket of --region to store them in")
parser.add_argument("--interval", default="500ms", help="time between two polls")
parser.add_argument("--timeout", default="5 minutes", help="the longest the watch runs")
parser.add_argument("--out", default="watch_progress.png", help="the PNG to write")
args = parser.parse_args()


# %% [markdown]
# ## The tasks to start
# The demo's emulator lists the AMIs it can store and its buckets at `/_emulator/state`,
# and takes settings at `/_emulator/config`: there the script makes new tasks take
# `--task-seconds`, so the whole lifecycle fits in a few seconds.

# %%
def emulator(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        args.emulator_url.rstrip("/") + path,
        data=data,
        method="GET" if data is None else "POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


amis, bucket = args.ami, args.bucket
if args.emulator_url:
    emulator("/_emulator/config", {"task_duration_secs": args.task_seconds})
    region_state = emulator("/_emulator/state")["regions"][args.region]
    amis = amis or region_state["amis"][: args.tasks]
    bucket = bucket or region_state["buckets"][0]
if not amis or not bucket:
    sys.exit("give --emulator-url, or --ami and --bucket")
print(f"storing {len(amis)} AMIs in s3://{bucket} ({args.region})")

# %% [markdown]
# ## INSERT: one CreateStoreImageTask per row

# %%
conn = flightsql.connect(args.uri, autocommit=True)
cur = conn.cursor()
values = ", ".join(f"('{args.region}', '{ami}', '{bucket}')" for ami in amis)
cur.execute(f"INSERT INTO store_image_tasks (region, amiId, bucket) VALUES {values}")
print(cur.fetchall())

# %% [markdown]
# ## Watch them
# `watch_store_image_tasks` sends every matching task at once, then a batch at each poll
# with the tasks that changed, and ends when every task is Completed or Failed. Reading the
# record-batch reader shows each batch as it arrives.

# %%
ami_list = ", ".join(f"'{ami}'" for ami in amis)
cur.execute(
    "SELECT amiId, progressPercentage, storeTaskState, storeTaskFailureReason, observedAt "
    f"FROM watch_store_image_tasks(interval => '{args.interval}', until => 'done', "
    f"timeout => '{args.timeout}') "
    f"WHERE region = '{args.region}' AND amiId IN ({ami_list})"
)
reader = cur.fetch_record_batch()
series = defaultdict(list)  # AMI -> [(observedAt, progress)]
final = {}
started = time.monotonic()
for batch in reader:
    for row in batch.to_pylist():
        series[row["amiId"]].append((row["observedAt"], row["progressPercentage"]))
        final[row["amiId"]] = (row["storeTaskState"], row["storeTaskFailureReason"])
    print(
        f"{time.monotonic() - started:6.1f}s  "
        + "  ".join(f"{r['amiId']} {r['progressPercentage']:3d}% {r['storeTaskState']}"
                    for r in batch.to_pylist())
    )
cur.close()
conn.close()

# %% [markdown]
# ## Plot: progress per task over time

# %%
first = min(points[0][0] for points in series.values())
fig, ax = plt.subplots(figsize=(8, 4.5))
for ami, points in sorted(series.items()):
    seconds = [(at - first).total_seconds() for at, _ in points]
    ax.step(seconds, [p for _, p in points], where="post", marker="o",
            label=f"{ami} ({final[ami][0]})")
ax.set_xlabel("seconds since the first poll")
ax.set_ylabel("progressPercentage")
ax.set_ylim(0, 105)
ax.set_title(f"store image tasks in {args.region}, watched every {args.interval}")
ax.legend(loc="lower right", fontsize="small")
fig.tight_layout()
fig.savefig(args.out, dpi=100)
print(f"wrote {args.out}")

# %%
failed = {ami: reason for ami, (state, reason) in final.items() if state == "Failed"}
unfinished = [ami for ami, (state, _) in final.items() if state not in ("Completed", "Failed")]
for ami, reason in failed.items():
    print(f"{ami} failed: {reason}")
if set(final) != set(amis) or failed or unfinished:
    sys.exit(f"not every task completed: failed {sorted(failed)}, unfinished {unfinished}")
print(f"all {len(amis)} tasks completed")
