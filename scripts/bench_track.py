"""Times the stages of scripts/bench-kafka-chain.

Uploads a file to istv ingest (--upload) or not, polls counters on the
services' /metrics until each reaches the upload's accepted rows (or
--rows), and prints, seconds counted from the start:

    ingest 0 0 ACK_SECONDS ROWS                  (with --upload)
    NAME FIRST_SECONDS FIRST_VALUE DONE_SECONDS  (for each --stage)
    cpu NAME SECONDS                             (for each --cpu, and postgres)

FIRST_* is the first poll that saw the counter move (so a stage's own rate
is (ROWS - FIRST_VALUE) / (DONE_SECONDS - FIRST_SECONDS), its start and
group join left out); cpu is user + system seconds over the same time.
"""

import argparse
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request

POLL = 0.05
GIVE_UP = 3600

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--upload", help="CSV file to upload")
p.add_argument("--token", help="the site's bearer token")
p.add_argument("--ingest", default="http://127.0.0.1:28080", help="istv ingest's base URL")
p.add_argument("--rows", type=int, help="the target without --upload")
p.add_argument("--from-zero", action="store_true",
               help="the counters' processes are new: count from zero, not from their first value")
p.add_argument("--stage", action="append", default=[], metavar="NAME=METRIC@URL,...",
               help="a counter, summed over every series of METRIC at each URL")
p.add_argument("--cpu", action="append", default=[], metavar="NAME=PID,...")
p.add_argument("--pg", nargs=2, metavar=("URL", "DB"),
               help="also the CPU of the PostgreSQL backends serving DB")
args = p.parse_args()


def counter(urls, metric):
    pattern = re.compile(rf"^{re.escape(metric)}(\{{[^}}]*\}})? ")
    total = 0.0
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if pattern.match(line):
                    total += float(line.rsplit(" ", 1)[1])
    return total


def pg_backends():
    url, db = args.pg
    sql = f"SELECT pid FROM pg_stat_activity WHERE datname = '{db}'"
    out = subprocess.run(["psql", "-Atq", url, "-c", sql], capture_output=True, text=True)
    return out.stdout.split()


def cpu(pids):
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return ticks / 100  # USER_HZ


groups = {n: v.split(",") for n, v in (c.split("=", 1) for c in args.cpu)}
before = {n: cpu(pids) for n, pids in groups.items()}
pg_before = {pid: cpu([pid]) for pid in pg_backends()} if args.pg else {}
stages = []
for spec in args.stage:
    name, rest = spec.split("=", 1)
    metric, urls = rest.split("@", 1)
    urls = urls.split(",")
    base = 0 if args.from_zero else counter(urls, metric)
    stages.append({"name": name, "metric": metric, "urls": urls, "base": base,
                   "first": None, "done": None})

start = time.time()
ack = {}


def upload():
    with open(args.upload, "rb") as f:
        body = f.read()
    req = urllib.request.Request(
        args.ingest + "/api/v1/uploads", data=body,
        headers={"Authorization": "Bearer " + args.token, "Content-Type": "text/csv"})
    with urllib.request.urlopen(req, timeout=GIVE_UP) as r:
        ack["rows"] = json.load(r)["accepted"]
    ack["t"] = time.time() - start


if args.upload:
    uploading = threading.Thread(target=upload)
    uploading.start()
while any(s["done"] is None for s in stages) or (args.upload and uploading.is_alive()):
    time.sleep(POLL)
    now = time.time() - start
    if now > GIVE_UP:
        sys.exit("bench_track.py: the counters did not reach the rows in an hour")
    if args.upload and not uploading.is_alive() and "t" not in ack:
        sys.exit("bench_track.py: the upload failed")
    target = ack.get("rows", args.rows)
    for s in stages:
        if s["done"] is None:
            v = counter(s["urls"], s["metric"]) - s["base"]
            if v > 0 and s["first"] is None:
                s["first"] = (now, v)
            if target is not None and v >= target:
                s["done"] = now
if args.upload:
    uploading.join()
    print(f"ingest 0 0 {ack['t']:.3f} {ack['rows']}")
for s in stages:
    print(f"{s['name']} {s['first'][0]:.3f} {s['first'][1]:.0f} {s['done']:.3f}")
for n, pids in groups.items():
    print(f"cpu {n} {cpu(pids) - before[n]:.1f}")
if args.pg:
    # Backends that started meanwhile count from zero.
    after = sum(cpu([pid]) - pg_before.get(pid, 0) for pid in pg_backends())
    print(f"cpu postgres {after:.1f}")
