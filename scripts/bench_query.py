#!/usr/bin/env python3
"""Query benchmark of `istv serve`, with DuckDB beside it.

Run through scripts/bench-query, which builds istv, installs what is missing,
makes the work directory and documents the settings. Sub-commands:
`all` (default), `mixed` (load SQLite and run only the mixed load), and the
internal `_rewrite SRC DST SALT PARTS`.
"""

import collections
import concurrent.futures as cf
import ctypes
import datetime as dt
import hashlib
import http.client
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

# --------------------------------------------------------------------------
# Record id rewrite (also run as a child process, one per file, so that two
# run on two cores).


def rewrite_ids(src, dst, salt, parts=1):
    """Copies a generated CSV, replacing each record_id with 20 hex digits of
    BLAKE2b(salt, generated id). site_code and record_id are the first two
    columns and never hold a comma or a quote, so a line's first two commas
    delimit the id (descriptions with commas are later, quoted, columns).
    With parts > 1, writes dst.0 .. dst.{parts-1}, consecutive rows each, each
    with the header. Ten digits inside such an id are not an NHS number to
    istv (it takes only a standalone token for one). Returns (rows, 0)."""
    base = hashlib.blake2b(salt.encode(), digest_size=10)
    again = 0
    with open(src, "rb", buffering=1 << 22) as f:
        header = f.readline()
        if not header.startswith(b"site_code,record_id,"):
            raise SystemExit(f"unexpected header in {src}: {header[:60]!r}")
        if parts == 1:
            total = None
        else:
            total = sum(1 for _ in f)
            f.seek(len(header))
        per_part = math.ceil(total / parts) if total else 0
        names = [dst] if parts == 1 else [f"{dst}.{i}" for i in range(parts)]
        n = 0
        for i, name in enumerate(names):
            with open(name, "wb", buffering=1 << 22) as o:
                o.write(header)
                w = o.write
                limit = per_part if parts > 1 else -1
                k = 0
                for line in f:
                    a, b, rest = line.split(b",", 2)
                    h = base.copy()
                    h.update(b)
                    hx = h.hexdigest().encode()
                    w(b"%s,%s,%s" % (a, hx, rest))
                    k += 1
                    if k == limit:
                        break
                n += k
    return n, again


if len(sys.argv) > 1 and sys.argv[1] == "_rewrite":
    print(*rewrite_ids(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
    sys.exit(0)

# --------------------------------------------------------------------------
# Settings.


def env_int(name, default):
    v = os.environ.get(name, "").replace("_", "").replace(",", "")
    return int(v) if v else default


ISTV = os.environ["ISTV_BIN"]
WORK = os.environ["WORK"]
MODE = sys.argv[1] if len(sys.argv) > 1 else "all"
if MODE not in ("all", "mixed"):
    raise SystemExit(f"unknown sub-command {MODE!r}: expected all or mixed")

SITES = env_int("SITES", 30)
RECORDS_PER_SITE = env_int("RECORDS_PER_SITE", 1_000_000)
YEARS = env_int("YEARS", 10)
LAST_YEAR = env_int("LAST_YEAR", 2025)
EXTRA_ROWS = env_int("EXTRA_ROWS", RECORDS_PER_SITE)
SEQ_ROWS = env_int("SEQ_ROWS", 1_000_000)
REPEAT = env_int("REPEAT", 20)
QUERY_BUDGET_S = env_int("QUERY_BUDGET_S", 300)
QUERY_TIMEOUT_S = env_int("QUERY_TIMEOUT_S", 900)
UPLOAD_JOBS = env_int("UPLOAD_JOBS", 2)
GEN_JOBS = env_int("GEN_JOBS", 2)
BOROUGH = os.environ.get("BOROUGH", "").upper()
SALT = os.environ.get("SALT", "bench-query")
PG = os.environ.get("PG", "auto")
PG_SERVER = os.environ.get(
    "PG_SERVER",
    os.environ.get("ISTV_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
)
REF = os.environ.get("REF", "../shared/reference")
MIXED = MODE == "mixed" or os.environ.get("MIXED", "0") == "1"
MIXED_PG = os.environ.get("MIXED_PG", "0") == "1"
MIXED_SITES = env_int("MIXED_SITES", 30)
MIXED_ROWS = env_int("MIXED_ROWS", 20_000)
MIXED_UPLOADS = env_int("MIXED_UPLOADS", 4)
MIXED_PER_SITE = env_int("MIXED_PER_SITE", 2)
MIXED_DAYS = env_int("MIXED_DAYS", 30)
CLIENTS = env_int("CLIENTS", 100)
MIXED_MAX_S = env_int("MIXED_MAX_S", 900)
MIXED_MAX_QUERIES = env_int("MIXED_MAX_QUERIES", 10_000)  # per client
LOAD_TOOL = os.environ.get("LOAD_TOOL", "python")
if LOAD_TOOL not in ("python", "wrk"):
    raise SystemExit(f"LOAD_TOOL={LOAD_TOOL}: expected python or wrk")
# The servers publish exact counts (--suppress-below 1, perturbation off),
# so that every group can be checked against DuckDB's; k = 1 also leaves
# the H3 map unmerged (a cell below k merges into its parent).
SUPPRESS_BELOW = 1

END = dt.date(LAST_YEAR, 12, 31)
START = dt.date(LAST_YEAR - YEARS + 1, 1, 1)

T0 = time.monotonic()


def log(msg):
    el = time.monotonic() - T0
    print(f"[{el:7.1f}s] {msg}", file=sys.stderr, flush=True)


def per_m(seconds, rows):
    return seconds / rows * 1e6 if rows else float("nan")


def fmt_int(n):
    return f"{n:,}"


def fmt_bytes(n):
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


# --------------------------------------------------------------------------
# Processes: servers get SIGTERM if this driver dies (PR_SET_PDEATHSIG) and
# are listed in WORK/pids for the wrapper's trap.

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _record(path, line, add=True):
    lines = []
    if os.path.exists(path):
        lines = [x for x in open(path).read().split() if x]
    if add:
        lines.append(line)
    else:
        lines = [x for x in lines if x != line]
    with open(path, "w") as f:
        f.write("".join(x + "\n" for x in lines))


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {' '.join(map(str, cmd[1:3]))} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


def psql(url, sql):
    return run(["psql", url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]).strip()


def pg_available():
    if PG == "0" or not shutil.which("psql"):
        return False
    try:
        psql(PG_SERVER, "SELECT 1")
        return True
    except Exception as e:  # noqa: BLE001
        if PG == "1":
            raise
        log(f"PostgreSQL not used: {str(e).strip()[:200]}")
        return False


class PgDatabase:
    """A fresh database on PG_SERVER, dropped by drop()."""

    count = 0

    def __init__(self):
        PgDatabase.count += 1
        self.name = f"istv_bench_{os.getpid()}_{PgDatabase.count}"
        _record(f"{WORK}/pgdb", self.name)
        psql(PG_SERVER, f"CREATE DATABASE {self.name}")
        self.url = PG_SERVER.rsplit("/", 1)[0] + "/" + self.name

    def size(self):
        return int(psql(self.url, "SELECT pg_database_size(current_database())"))

    def tables(self):
        out = psql(
            self.url,
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
            "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
            "ORDER BY 2 DESC LIMIT 6",
        )
        return [(a, int(b)) for a, b in (x.split("|") for x in out.splitlines() if x)]

    def drop(self):
        psql(PG_SERVER, f"DROP DATABASE IF EXISTS {self.name}")
        _record(f"{WORK}/pgdb", self.name, add=False)


class Server:
    """An `istv serve` on a data directory copied from the geography
    template, on SQLite there or on a PostgreSQL database."""

    def __init__(self, name, backend):
        self.name = name
        self.backend = backend
        self.dir = f"{WORK}/{name}"
        shutil.copytree(f"{WORK}/geo-template", self.dir)
        self.pg = PgDatabase() if backend == "pg" else None
        self.args = ["--data-dir", self.dir]
        if self.pg:
            self.args += ["--database-url", self.pg.url]
        self.tokens = {}
        self.analyst = None
        self.proc = None

    def add_sites(self, codes):
        for code in codes:
            out = run([ISTV, *self.args, "sites", "add", "--code", code, "--name", f"Bench site {code}"])
            self.tokens[code] = out.strip().splitlines()[-1]
        if self.analyst is None:
            # Queries need a credential: an analyst of all London.
            run([ISTV, *self.args, "orgs", "add", "BENCH", "--name", "Benchmark"])
            run([ISTV, *self.args, "users", "add", "bench-analyst", "--org", "BENCH", "--role", "analyst"])
            out = run([ISTV, *self.args, "users", "token", "bench-analyst", "--name", "bench"])
            self.analyst = out.strip().splitlines()[-1]

    def start(self):
        logpath = f"{self.dir}.log"
        env = dict(os.environ, RUST_LOG="warn")
        t0 = time.monotonic()
        with open(logpath, "w") as logf:
            self.proc = subprocess.Popen(
                # Exact counts (see SUPPRESS_BELOW), and no per-user or per-organisation
                # query rate: one analyst token runs every client.
                [ISTV, *self.args, "serve", "--listen", "127.0.0.1:0", "--max-perturbation", "0",
                 "--suppress-below", str(SUPPRESS_BELOW), "--query-rate-per-minute", "1000000000",
                 "--query-rate-per-org-per-minute", "1000000000"],
                stdout=subprocess.DEVNULL,
                stderr=logf,
                env=env,
                preexec_fn=_die_with_parent,
            )
        _record(f"{WORK}/pids", str(self.proc.pid))
        self.base = None
        while time.monotonic() - t0 < 60 and self.base is None:
            m = re.search(r"istv listening on (http://\S+)", open(logpath).read())
            if m:
                self.base = m.group(1)
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if self.base is None:
            raise RuntimeError(f"server {self.name} did not start: {open(logpath).read()[-2000:]}")
        u = urllib.parse.urlsplit(self.base)
        self.host, self.port = u.hostname, u.port
        c = Http(self.host, self.port, 5)
        while time.monotonic() - t0 < 300:
            try:
                st, _, _, _ = c.request("GET", "/readyz")
                if st == 200:
                    break
            except OSError:
                c.reset()
            time.sleep(0.05)
        else:
            raise RuntimeError(f"server {self.name} did not get ready")
        c.close()
        self.ready_s = time.monotonic() - t0

    def status(self):
        out = {}
        for line in open(f"/proc/{self.proc.pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0]) // 1024  # MB (MiB)
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            _record(f"{WORK}/pids", str(self.proc.pid), add=False)
        self.proc = None

    def close(self):
        """Stops the server, drops its database, removes its directory."""
        self.stop()
        if self.pg:
            self.pg.drop()
            self.pg = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def sqlite_file(self):
        return f"{self.dir}/istv.db"

    def disk_bytes(self):
        """Bytes of the store: SQLite's files after a WAL checkpoint, or
        pg_database_size. Returns (bytes, note, breakdown)."""
        if self.pg:
            return self.pg.size(), "pg_database_size", self.pg.tables()
        db = self.sqlite_file()
        ck = run(["sqlite3", "-cmd", ".timeout 10000", db, "PRAGMA wal_checkpoint(TRUNCATE);"]).strip()
        size = sum(os.path.getsize(f"{db}{s}") for s in ("", "-wal", "-shm") if os.path.exists(f"{db}{s}"))
        tables = []
        if os.environ.get("DBSTAT", "1") == "1":
            try:
                out = run(["sqlite3", db, "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8;"])
                tables = [(a, int(b)) for a, b in (x.split("|") for x in out.splitlines() if x)]
            except RuntimeError:
                pass
        return size, f"istv.db, -wal and -shm after PRAGMA wal_checkpoint(TRUNCATE) (busy|log|checkpointed: {ck})", tables


# --------------------------------------------------------------------------
# HTTP: one persistent connection per client.


class Http:
    def __init__(self, host, port, timeout=QUERY_TIMEOUT_S, token=None):
        self.host, self.port, self.timeout = host, port, timeout
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.conn = None
        self.opened = 0

    def reset(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    close = reset

    def request(self, method, path, body=None, headers=None, retry_stale=True):
        """Returns (status, headers, body, seconds): from sending the request
        to the end of the body. A connection the server closed while idle
        is reopened once (for GETs), and that attempt's time is not kept."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.connect()
                self.opened += 1
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers={**self.auth, **(headers or {})})
                r = self.conn.getresponse()
                data = r.read()
                t = time.perf_counter() - t0
                if r.will_close:
                    self.reset()
                return r.status, r.headers, data, t
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.reset()
                if attempt or not retry_stale:
                    raise
            except Exception:
                self.reset()
                raise
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------
# Sites, feeds.

REAL_SITES = ["RJ122", "R1H12", "RJ701", "RAL01", "RYJ02", "RRV03", "RJ1", "RQXM1", "RF4QH", "RAX01", "RVR05", "RAS01"]


def site_codes(n):
    """The generator's twelve London EDs first (their records cluster
    around each hospital), then ODS-like RJ1nn codes (the generator places
    records of a code it does not know around the first hospital)."""
    codes = REAL_SITES[:n]
    i = 0
    while len(codes) < n:
        c = f"RJ1{i:02d}" if i < 100 else f"RX{i:04d}"
        if c not in codes and c not in REAL_SITES:
            codes.append(c)
        i += 1
    return codes


class Feed:
    def __init__(self, path, site, rows, seed, frm, to, salt, parts=1, keep_sequential=False):
        self.path, self.site, self.rows, self.seed = path, site, rows, seed
        self.frm, self.to, self.salt, self.parts = frm, to, salt, parts
        self.keep_sequential = keep_sequential
        self.files = [path] if parts == 1 else [f"{path}.{i}" for i in range(parts)]
        self.seq_path = path.replace(".csv", ".seq.csv")
        self.gen_s = self.rw_s = 0.0
        self.rehashed = 0

    def make(self):
        raw = self.seq_path if self.keep_sequential else self.path + ".raw"
        t0 = time.monotonic()
        run([ISTV, "generate", "--records", str(self.rows), "--seed", str(self.seed), "--site", self.site,
             "--from", self.frm.isoformat(), "--to", self.to.isoformat(), "-o", raw])
        t1 = time.monotonic()
        n, self.rehashed = map(int, run([sys.executable, __file__, "_rewrite", raw, self.path, self.salt,
                                         str(self.parts)]).split())
        t2 = time.monotonic()
        if n != self.rows:
            raise RuntimeError(f"{raw}: {n} rows, expected {self.rows}")
        if not self.keep_sequential:
            os.remove(raw)
        self.gen_s, self.rw_s = t1 - t0, t2 - t1
        return self


def make_feeds(feeds, label, stats):
    if not feeds:
        return
    rows = sum(f.rows for f in feeds)
    log(f"generating {label}: {len(feeds)} files, {fmt_int(rows)} rows, {GEN_JOBS} at a time")
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(GEN_JOBS) as ex:
        list(ex.map(Feed.make, feeds))
    wall = time.monotonic() - t0
    gen = sum(f.gen_s for f in feeds)
    rw = sum(f.rw_s for f in feeds)
    stats.append((label, len(feeds), rows, wall, gen, rw, sum(f.rehashed for f in feeds)))
    log(f"  {wall:.1f} s wall; generate {per_m(gen, rows):.2f} s, rewrite ids {per_m(rw, rows):.2f} s per 1M rows (one core each)")


# --------------------------------------------------------------------------
# Uploads with the istv CLI.


def receipt_problem(r, rows):
    want = dict(rows=rows, accepted=rows, rejected=0, duplicates=0, corrections=0, replaced_in_file=0)
    bad = {k: r.get(k) for k, v in want.items() if r.get(k) != v}
    return f"receipt {bad}, expected {want}; first errors {r.get('errors', [])[:3]}" if bad else None


def check_receipt(r, rows, what):
    bad = receipt_problem(r, rows)
    if bad:
        raise RuntimeError(f"{what}: {bad}")


def upload_cli(srv, site, path, rows):
    env = dict(os.environ, ISTV_TOKEN=srv.tokens[site])
    t0 = time.monotonic()
    r = subprocess.run([ISTV, "upload", path, "--url", srv.base], env=env, capture_output=True, text=True)
    t = time.monotonic() - t0
    try:
        receipt = json.loads(r.stdout)
    except ValueError:
        raise RuntimeError(f"upload of {path} failed ({r.returncode}): {r.stderr[-2000:]}") from None
    check_receipt(receipt, rows, f"upload of {os.path.basename(path)}")
    return t


def sync():
    # Files just written still being flushed to disk would slow the
    # server's own syncs; measure the uploads alone (as bench-serve does).
    os.sync()


# --------------------------------------------------------------------------
# The query set.


class Query:
    def __init__(self, qid, label, route, params):
        self.id, self.label, self.route, self.params = qid, label, route, params
        self.path = f"/api/v1/{route}?" + urllib.parse.urlencode(params, safe=",")
        self.dims, self.filters, self.frm, self.to, self.res = [], {}, None, None, 9
        for k, v in params:
            if k == "group_by":
                self.dims += v.split(",")
            elif k == "from":
                self.frm = v
            elif k == "to":
                self.to = v
            elif k == "resolution":
                self.res = int(v)
            elif k == "level":
                self.dims = [v]
            else:
                self.filters[k] = v
        if route == "cells":
            self.dims = ["cell"]

    def day_range(self):
        """The days a query counts, from from/to and time filters."""
        lo, hi = self.frm, self.to
        for k, v in self.filters.items():
            if k == "week":
                y, w = v.split("-W")
                a = dt.date.fromisocalendar(int(y), int(w), 1)
                b = a + dt.timedelta(days=6)
            elif k == "month":
                a = dt.date.fromisoformat(v + "-01")
                b = (a.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
            else:
                continue
            lo = max(lo, a.isoformat()) if lo else a.isoformat()
            hi = min(hi, b.isoformat()) if hi else b.isoformat()
        return lo, hi

    def markdown(self):
        return f"`{self.path}`"


def query_set(b):
    y = LAST_YEAR
    year = [("from", f"{y}-01-01"), ("to", f"{y}-12-31")]
    month = [("from", f"{y}-06-01"), ("to", f"{y}-06-30")]
    quarter = [("from", f"{y}-04-01"), ("to", f"{y}-06-30")]
    two_years = [("from", f"{y - 1}-01-01"), ("to", f"{y}-12-31")]
    last90 = [("from", (END - dt.timedelta(days=89)).isoformat()), ("to", END.isoformat())]
    week = f"{y}-W24"
    return [
        Query(1, "month, everything", "aggregates", [("group_by", "month")]),
        Query(2, "month x borough, everything", "aggregates", [("group_by", "month,borough")]),
        Query(3, "week, one borough, two years", "aggregates", [("group_by", "week"), ("borough", b), *two_years]),
        Query(4, "hour x weekday, one borough, one year", "aggregates", [("group_by", "hour,weekday"), ("borough", b), *year]),
        Query(5, "method x location type, one month", "aggregates", [("group_by", "assault_method,location_type"), *month]),
        Query(6, "cells r8, one month", "cells", [("resolution", "8"), *month]),
        Query(7, "cells r10, one borough, one ISO week", "cells", [("resolution", "10"), ("borough", b), ("week", week)]),
        Query(8, "ward, sharp_object, one year", "aggregates", [("group_by", "ward"), ("assault_method", "sharp_object"), *year]),
        Query(9, "lsoa, one month", "aggregates", [("group_by", "lsoa"), ("month", f"{y}-06")]),
        Query(10, "day x site, last 90 days", "aggregates", [("group_by", "day,site"), *last90]),
        Query(11, "age band x sex, one borough, one year", "aggregates", [("group_by", "age_band,sex"), ("borough", b), *year]),
        Query(12, "areas borough, one quarter", "areas", [("level", "borough"), *quarter]),
    ]


LABEL_RE = {
    "day": r"\d{4}-\d{2}-\d{2}",
    "week": r"\d{4}-W\d{2}",
    "month": r"\d{4}-\d{2}",
    "hour": r"[0-9]|1[0-9]|2[0-3]|unknown",
    "weekday": r"mon|tue|wed|thu|fri|sat|sun",
    "borough": r"E09\d{6}|unknown",
    "ward": r"E05\d{6}|unknown",
    "lsoa": r"E01\d{6}|unknown",
    "assault_method": r"body_part|blunt_object|sharp_object|firearm|other|not_known",
    "location_type": r"street|licensed_premises|home|workplace|education|public_transport|other|not_known",
    "age_band": r"0-9|10-17|18-24|25-34|35-44|45-54|55-64|65\+|unknown",
    "sex": r"female|male|other|not_known|unknown",
    "site": r"[A-Z0-9]{3,12}",
}


def normalize(q, doc):
    """The answer as {group key: count}, None for a suppressed count. Keys
    are label tuples; a cell is its integer (0 for unknown), as in DuckDB.
    Groups with count 0 (areas without records) are left out."""
    out = {}
    if q.route == "aggregates":
        for row in doc["rows"]:
            key = tuple(row[d] for d in q.dims)
            if key in out:
                raise ValueError(f"group {key} twice")
            out[key] = None if row.get("suppressed") else row["count"]
        return out
    for feat in doc["features"]:
        p = feat["properties"]
        key = (int(p["cell"], 16),) if q.route == "cells" else (p["code"],)
        c = None if p.get("suppressed") else p["count"]
        if c != 0:
            out[key] = c
    lu = doc["location_unknown"]
    if lu.get("suppressed") or lu.get("count"):
        out[(0,) if q.route == "cells" else ("unknown",)] = None if lu.get("suppressed") else lu["count"]
    return out


def sanity(q, status, headers, body, records):
    """Problems with an answer (empty list when sane)."""
    if status != 200:
        return [f"status {status}: {body[:200]!r}"]
    probs = []
    try:
        doc = json.loads(body)
        norm = normalize(q, doc)
    except Exception as e:  # noqa: BLE001
        return [f"unreadable answer: {e!r}"]
    if not norm:
        probs.append("no groups")
    lo, hi = q.day_range()
    for key, c in norm.items():
        if c is not None and (not isinstance(c, int) or c < SUPPRESS_BELOW):
            probs.append(f"count {c!r} for {key}")
        for d, v in zip(q.dims, key):
            if d == "cell":
                if v and (v >> 52) & 15 != q.res:
                    probs.append(f"cell {v:x} not at resolution {q.res}")
                continue
            if d in LABEL_RE and not re.fullmatch(LABEL_RE[d], v):
                probs.append(f"{d} label {v!r}")
            if d in ("borough", "ward", "lsoa") and d in q.filters and v != q.filters[d]:
                probs.append(f"{d} {v} outside the filter")
            if d == "day" and ((lo and v < lo) or (hi and v > hi)):
                probs.append(f"day {v} outside {lo}..{hi}")
            if d == "month" and ((lo and v < lo[:7]) or (hi and v > hi[:7])):
                probs.append(f"month {v} outside {lo}..{hi}")
        if len(probs) > 5:
            break
    published = sum(c for c in norm.values() if c is not None)
    suppressed = sum(1 for c in norm.values() if c is None)
    if published + suppressed > records:
        probs.append(f"{published} records published, {records} stored")
    if not q.filters and not q.frm and not q.to:
        # Everything: the groups' counts must add up to the records stored.
        if not published + suppressed <= records <= published + (SUPPRESS_BELOW - 1) * suppressed:
            probs.append(f"total {published} (+{suppressed} suppressed groups) is not the {records} records stored")
    if q.route == "cells":
        if doc.get("type") != "FeatureCollection" or doc.get("resolution") != q.res:
            probs.append("not a FeatureCollection at the resolution asked")
        elif doc["features"] and len(doc["features"][0]["geometry"]["coordinates"][0]) != 7:
            probs.append("a cell boundary without 6 vertices")
    if q.route == "areas" and (doc.get("level") != q.dims[0] or not doc["features"]):
        probs.append("no areas of the level")
    return probs[:6]


def nearest_rank(xs, p):
    s = sorted(xs)
    return s[max(0, math.ceil(p * len(s)) - 1)] if s else float("nan")


def bench_http(srv, queries, records, label):
    """Each query: a warm-up, then REPEAT timed runs. Returns {id: result}."""
    c = Http(srv.host, srv.port, token=srv.analyst)
    c.request("GET", "/healthz")
    out = {}
    for q in queries:
        try:
            st, h, body, warm = c.request("GET", q.path)
        except Exception as e:  # noqa: BLE001  (a timeout: QUERY_TIMEOUT_S)
            c.reset()
            out[q.id] = dict(times=[], warm=None, norm=None, problems=[f"warm-up failed: {e!r}"], bytes=0)
            log(f"  {label} q{q.id:<2} {q.label:<40} FAILED: {e!r}")
            continue
        probs = sanity(q, st, h, body, records)
        norm = normalize(q, json.loads(body)) if st == 200 and not probs else None
        times, differ = [], 0
        t_start = time.monotonic()
        for i in range(REPEAT):
            try:
                st2, _, b2, t = c.request("GET", q.path)
            except Exception as e:  # noqa: BLE001
                c.reset()
                probs.append(f"run {i + 1} failed: {e!r}")
                break
            times.append(t)
            if st2 != 200:
                differ += 1
            elif b2 != body:
                try:
                    if normalize(q, json.loads(b2)) != norm:
                        differ += 1
                except Exception:  # noqa: BLE001
                    differ += 1
            if time.monotonic() - t_start > QUERY_BUDGET_S and i >= 2:
                break
        if differ:
            probs.append(f"{differ} of {len(times)} repeated answers differ from the first or are not 200")
        out[q.id] = dict(times=times, warm=warm, norm=norm, problems=probs, bytes=len(body))
        log(f"  {label} q{q.id:<2} {q.label:<40} p50 {nearest_rank(times, 0.5) * 1e3:9.1f} ms  "
            f"p99 {nearest_rank(times, 0.99) * 1e3:9.1f} ms  n={len(times)}  {len(norm or {})} groups  "
            f"{len(body):,} B{'  PROBLEMS: ' + '; '.join(probs) if probs else ''}")
    log(f"  {label}: {c.opened} HTTP connection(s) opened for {sum(len(r['times']) + 1 for r in out.values())} requests")
    c.close()
    return out


def pick_borough(srv):
    if BOROUGH:
        return BOROUGH
    c = Http(srv.host, srv.port, token=srv.analyst)
    st, _, body, _ = c.request("GET", "/api/v1/aggregates?group_by=borough")
    c.close()
    rows = [r for r in json.loads(body)["rows"] if r["borough"] != "unknown" and r.get("count")]
    return max(rows, key=lambda r: r["count"])["borough"] if rows else "E09000033"


# --------------------------------------------------------------------------
# DuckDB.

NO_RES = ~(0xF << 52)


def cell_expr(r):
    setbits = (r << 52) | ((1 << (3 * (15 - r))) - 1)
    return f"CASE WHEN cell IS NULL OR ((cell >> 52) & 15) < {r} THEN 0 ELSE ((cell & ({NO_RES})) | {setbits}) END"


DUCK_EXPR = {
    "day": "strftime(day, '%Y-%m-%d')",
    "week": "strftime(day, '%G-W%V')",
    "month": "strftime(day, '%Y-%m')",
    "weekday": "['mon','tue','wed','thu','fri','sat','sun'][isodow(day)]",
    "hour": "coalesce(CAST(hour AS VARCHAR), 'unknown')",
    "borough": "coalesce(borough, 'unknown')",
    "ward": "coalesce(ward, 'unknown')",
    "lsoa": "coalesce(lsoa, 'unknown')",
    "assault_method": "method",
    "location_type": "location_type",
    "age_band": "age_band",
    "sex": "sex",
    "site": "site",
}
DUCK_FILTER_COL = {"borough": "borough", "ward": "ward", "lsoa": "lsoa", "assault_method": "method",
                   "location_type": "location_type", "age_band": "age_band", "sex": "sex", "site": "site"}


def duck_sql(q):
    cols = [f"cell{q.res}" if d == "cell" else DUCK_EXPR[d] for d in q.dims]
    where = []
    lo, hi = q.day_range()
    if lo:
        where.append(f"day >= DATE '{lo}'")
    if hi:
        where.append(f"day <= DATE '{hi}'")
    for k, v in q.filters.items():
        if k in ("week", "month"):
            continue  # in day_range: a week or month is exactly its days
        where.append(f"{DUCK_FILTER_COL[k]} = '{v}'")
    sel = ", ".join(f"{c} AS g{i}" for i, c in enumerate(cols))
    grp = ", ".join(f"g{i}" for i in range(len(cols)))
    return (f"SELECT {sel}, count(*) AS n FROM records"
            + (f" WHERE {' AND '.join(where)}" if where else "") + f" GROUP BY {grp}")


def duck_load(srv, stats):
    import duckdb

    csv = f"{WORK}/records.csv"
    sync()
    t0 = time.monotonic()
    with open(csv, "w") as f:
        subprocess.run(["sqlite3", "-batch", "-csv", srv.sqlite_file(),
                        "SELECT site_code, day, hour, assault_method, location_type, age_band, sex, "
                        "cell, borough, ward, lsoa FROM records"], stdout=f, check=True)
    t1 = time.monotonic()
    con = duckdb.connect()
    cols = ("{'site': 'VARCHAR', 'day': 'DATE', 'hour': 'SMALLINT', 'method': 'VARCHAR', "
            "'location_type': 'VARCHAR', 'age_band': 'VARCHAR', 'sex': 'VARCHAR', 'cell': 'BIGINT', "
            "'borough': 'VARCHAR', 'ward': 'VARCHAR', 'lsoa': 'VARCHAR'}")
    cells = ", ".join(f"{cell_expr(r)} AS cell{r}" for r in (7, 8, 9, 10))
    con.execute(
        f"CREATE TABLE records AS SELECT site, day, hour, method, location_type, age_band, sex, {cells}, "
        f"borough, ward, lsoa FROM read_csv('{csv}', header = false, columns = {cols}, "
        f"nullstr = '', auto_detect = false, delim = ',', quote = '\"')"
    )
    t2 = time.monotonic()
    n = con.execute("SELECT count(*) FROM records").fetchone()[0]
    size = os.path.getsize(csv)
    os.remove(csv)
    stats.update(rows=n, export_s=t1 - t0, load_s=t2 - t1, csv_bytes=size,
                 threads=con.execute("SELECT current_setting('threads')").fetchone()[0],
                 version=duckdb.__version__)
    log(f"DuckDB: {fmt_int(n)} records; sqlite3 CSV export {t1 - t0:.1f} s ({per_m(t1 - t0, n):.2f} s/1M), "
        f"DuckDB read_csv {t2 - t1:.1f} s ({per_m(t2 - t1, n):.2f} s/1M)")
    return con


def duck_norm(q, rows):
    out = {}
    for *key, n in rows:
        key = tuple(k if d == "cell" else ("unknown" if k is None else str(k)) for d, k in zip(q.dims, key))
        out[key] = n
    return out


def bench_duck(con, queries):
    out = {}
    for q in queries:
        sql = duck_sql(q)
        t = time.perf_counter()
        rows = con.execute(sql).fetchall()
        warm = time.perf_counter() - t
        times = []
        for _ in range(REPEAT):
            t = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - t)
        out[q.id] = dict(times=times, warm=warm, norm=duck_norm(q, rows), sql=sql)
        log(f"  DuckDB q{q.id:<2} {q.label:<40} p50 {nearest_rank(times, 0.5) * 1e3:9.2f} ms  "
            f"p99 {nearest_rank(times, 0.99) * 1e3:9.2f} ms  {len(rows)} groups")
    return out


def compare(api, duck):
    """Group by group: published counts equal, suppressed groups 1 to k-1 in
    DuckDB, no group on one side only."""
    bad = []
    for k, c in api.items():
        d = duck.get(k, 0)
        if c is None:
            if not 1 <= d < SUPPRESS_BELOW:
                bad.append(f"{k}: suppressed, DuckDB {d}")
        elif c != d:
            bad.append(f"{k}: API {c}, DuckDB {d}")
    for k, d in duck.items():
        if k not in api and d != 0:
            bad.append(f"{k}: not in the API's answer, DuckDB {d}")
    supp = [k for k, c in api.items() if c is None]
    return dict(
        groups=len(api), suppressed=len(supp), mismatches=bad,
        api_published=sum(c for c in api.values() if c is not None),
        duck_total=sum(duck.values()),
        duck_on_suppressed=sum(duck.get(k, 0) for k in supp),
    )


# --------------------------------------------------------------------------
# Mixed load: uploads from threads while query clients loop.

WRK_LUA = r"""
paths = { @PATHS@ }
local threads = {}
wrk.headers["Authorization"] = "Bearer @TOKEN@"
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  i = id * 5
  statuses = {}
  pause = 0
end
function delay()
  local p = pause
  pause = 0
  return p
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
function response(status, headers, body)
  local k = tostring(status)
  local ra = headers["Retry-After"] or headers["retry-after"]
  if status == 503 and ra then
    k = "503 with Retry-After"
    pause = math.min(tonumber(ra) or 1, 5) * 1000
  end
  statuses[k] = (statuses[k] or 0) + 1
end
function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[k] = (agg[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"p50_us":%d,"p99_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"statuses":{%s}}\n',
    summary.requests, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, table.concat(parts, ",")))
end
"""


def start_wrk(srv, queries, clients):
    """wrk (LOAD_TOOL=wrk): `clients` connections on two threads, each
    looping over the query set, until stop_wrk or MIXED_MAX_S."""
    script = f"{WORK}/mixed.lua"
    with open(script, "w") as f:
        f.write(WRK_LUA.replace("@PATHS@", ", ".join(json.dumps(q.path) for q in queries))
                .replace("@TOKEN@", srv.analyst))
    proc = subprocess.Popen(
        ["wrk", "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{MIXED_MAX_S}s",
         "--timeout", f"{QUERY_TIMEOUT_S}s", "--latency", "-s", script, srv.base],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _record(f"{WORK}/pids", str(proc.pid))
    return proc


def stop_wrk(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # wrk stops and prints its summary
    out, _ = proc.communicate(timeout=120)
    _record(f"{WORK}/pids", str(proc.pid), add=False)
    m = re.search(r"^WRK_RESULT (.*)$", out, re.M)
    if not m:
        raise RuntimeError(f"wrk gave no result: {out[-2000:]}")
    r = json.loads(m.group(1))
    st = dict(r["statuses"])
    for k, v in r["errors"].items():
        if v:
            st[f"error {k}"] = v
    return dict(tool="wrk", q_status=st, queries=st.get("200", 0), p50=r["p50_us"] / 1e6,
                p99=r["p99_us"] / 1e6, lat={}, mean_inflight=float("nan"), peak_inflight=float("nan"),
                gap_p50=float("nan"), gap_p99=float("nan"))


def mixed_phase(srv, feeds, queries, clients, label):
    """Uploads every file of `feeds` (at most MIXED_PER_SITE at a time per
    site) while `clients` threads loop over the query set; the clients stop
    when the uploads are done. Bounded by MIXED_MAX_S."""
    lock = threading.Lock()
    done = threading.Event()
    deadline = time.monotonic() + MIXED_MAX_S
    up_status = collections.Counter()
    q_status = collections.Counter()
    samples_bad = {}  # first answer of each failing kind

    def bad(kind, text):
        with lock:
            samples_bad.setdefault(kind, text[:300])
    lat = collections.defaultdict(list)
    gaps = []
    accepted = [0]
    failed_uploads = [0]  # given up: a failing status, 30 attempts, or the deadline
    inflight = [0, 0]  # now, peak
    samples = []
    queues = {}
    for f in feeds:
        queues.setdefault(f.site, []).extend((p, f) for p in f.files)
    part_rows = {}
    for f in feeds:
        for p in f.files:
            with open(p, "rb") as fh:
                part_rows[p] = sum(1 for _ in fh) - 1
    bodies = {}

    def uploader(site):
        c = Http(srv.host, srv.port, token=srv.analyst)
        hdr = {"Authorization": f"Bearer {srv.tokens[site]}", "Content-Type": "text/csv"}
        while time.monotonic() < deadline:
            with lock:
                if not queues[site]:
                    break
                path, _ = queues[site].pop(0)
            body = bodies[path]
            ok = False
            for _attempt in range(30):
                if time.monotonic() > deadline:
                    break
                try:
                    st, h, data, _ = c.request("POST", "/api/v1/uploads", body, hdr, retry_stale=False)
                except Exception as e:  # noqa: BLE001  (counted, then sent again)
                    with lock:
                        up_status[f"error {type(e).__name__}"] += 1
                    bad(f"upload error {type(e).__name__}", repr(e))
                    time.sleep(0.2)
                    continue
                ra = h.get("Retry-After")
                key = "503 with Retry-After" if st == 503 and ra else str(st)
                with lock:
                    up_status[key] += 1
                if st == 200:
                    r = json.loads(data)
                    prob = receipt_problem(r, part_rows[path])
                    with lock:
                        accepted[0] += r["accepted"]
                        if prob:
                            up_status["200 with an unexpected receipt"] += 1
                    if prob:
                        bad("upload receipt", prob)
                    ok = True
                    break
                if key not in ("200", "503 with Retry-After"):
                    bad(f"upload {st}", data.decode("utf-8", "replace"))
                if st == 503 and ra:
                    time.sleep(min(float(ra), 5.0))
                elif st == 429:
                    time.sleep(0.5)
                else:
                    break
            if not ok:
                with lock:
                    failed_uploads[0] += 1
        c.close()

    def client(i):
        c = Http(srv.host, srv.port, token=srv.analyst)
        k = i
        last_end = None
        while not done.is_set() and time.monotonic() < deadline and k < i + MIXED_MAX_QUERIES:
            q = queries[k % len(queries)]
            k += 1
            t_start = time.perf_counter()
            if last_end is not None:
                g = t_start - last_end
                with lock:
                    gaps.append(g)
            with lock:
                inflight[0] += 1
                inflight[1] = max(inflight[1], inflight[0])
            try:
                st, h, body, t = c.request("GET", q.path)
            except Exception as e:  # noqa: BLE001
                with lock:
                    inflight[0] -= 1
                    q_status[f"error {type(e).__name__}"] += 1
                bad(f"query error {type(e).__name__}", repr(e))
                time.sleep(0.2)
                last_end = None
                continue
            last_end = time.perf_counter()
            ra = h.get("Retry-After")
            key = "503 with Retry-After" if st == 503 and ra else str(st)
            with lock:
                inflight[0] -= 1
                q_status[key] += 1
                if st == 200:
                    lat[q.id].append(t)
            if key not in ("200", "503 with Retry-After"):
                bad(f"query {st}", body.decode("utf-8", "replace"))
            if st == 503 and ra:
                time.sleep(min(float(ra), 5.0))
                last_end = None
        c.close()

    def sampler():
        while not done.is_set():
            with lock:
                samples.append(inflight[0])
            time.sleep(0.05)

    for p in part_rows:
        with open(p, "rb") as fh:
            bodies[p] = fh.read()
    use_wrk = clients and LOAD_TOOL == "wrk"
    sync()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    rc0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    wrk = None
    cthreads = [] if use_wrk else [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in cthreads:
        t.start()
    if use_wrk:
        wrk = start_wrk(srv, queries, clients)
    if clients:
        threading.Thread(target=sampler, daemon=True).start()
        time.sleep(1.0)  # the clients are running before the uploads start
    t_up0 = time.monotonic()
    uthreads = [threading.Thread(target=uploader, args=(s,), daemon=True)
                for s in queues for _ in range(MIXED_PER_SITE)]
    for t in uthreads:
        t.start()
    for t in uthreads:
        t.join(max(1.0, deadline - time.monotonic() + QUERY_TIMEOUT_S))
    up_s = time.monotonic() - t_up0
    done.set()
    for t in cthreads:
        t.join(QUERY_TIMEOUT_S + 5)
    wrk_res = stop_wrk(wrk) if wrk else None
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    rc1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if wrk_res:
        wrk_res["cpu_share"] = ((rc1.ru_utime - rc0.ru_utime) + (rc1.ru_stime - rc0.ru_stime)) / wall
    all_lat = [x for v in lat.values() for x in v]
    res = dict(
        label=label, rows=accepted[0], expected=sum(part_rows.values()), upload_s=up_s,
        rate=accepted[0] / up_s if up_s else 0, up_status=dict(up_status), q_status=dict(q_status),
        lat=dict(lat), p50=nearest_rank(all_lat, 0.5), p99=nearest_rank(all_lat, 0.99), queries=len(all_lat),
        cpu_share=cpu / wall if wall else 0, wall=wall, peak_inflight=inflight[1],
        mean_inflight=(sum(samples) / len(samples)) if samples else 0,
        gap_p50=nearest_rank(gaps, 0.5), gap_p99=nearest_rank(gaps, 0.99), clients=clients,
        uploads=sum(len(f.files) for f in feeds), sites=len(queues), samples=samples_bad,
        not_sent=sum(len(v) for v in queues.values()), failed_uploads=failed_uploads[0], tool="python",
    )
    if wrk_res:
        res.update(wrk_res)
    log(f"  {label}: {fmt_int(res['rows'])} of {fmt_int(res['expected'])} rows in {up_s:.1f} s = {res['rate']:,.0f} rows/s; "
        f"uploads {dict(up_status)}"
        + (f"; {res['queries']} queries ({res['tool']}) p50 {ms(res['p50'])} p99 {ms(res['p99'])}, {res['q_status']}; "
           f"client CPU {res['cpu_share'] * 100:.0f}% of a core, in flight mean {res['mean_inflight']:.0f} "
           f"peak {res['peak_inflight']}" if clients else ""))
    for k, v in samples_bad.items():
        log(f"    first {k}: {v[:200]}")
    return res


# --------------------------------------------------------------------------
# The run.


def ms(x):
    if x != x:  # nan
        return "-"
    if x < 0.01:
        return f"{x * 1e3:.2f} ms"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def pq(times):
    if not times:
        return "-"
    return f"{ms(nearest_rank(times, 0.5))} / {ms(nearest_rank(times, 0.99))}"


def main():
    report = []
    say = report.append
    codes = site_codes(max(SITES, MIXED_SITES if MIXED else 0))
    main_codes = codes[:SITES]
    use_pg = MODE == "all" and pg_available()
    frm, to = START, END
    mixed_from = END - dt.timedelta(days=MIXED_DAYS - 1) if MIXED_DAYS > 0 else START
    log(f"sizes: {SITES} sites x {fmt_int(RECORDS_PER_SITE)} records, {START}..{END}; REPEAT {REPEAT}; "
        f"PostgreSQL {'yes' if use_pg else 'no'}; mixed {'yes' if MIXED else 'no'}")

    # Geography, once, copied into every data directory.
    t0 = time.monotonic()
    g = [ISTV, "--data-dir", f"{WORK}/geo-template", "geo"]
    os.makedirs(f"{WORK}/geo-template")
    geo = f"{REF}/geo"
    if not os.path.isdir(geo):
        raise SystemExit(f"no reference geography at {geo} (set REF)")
    run([*g, "import", "--level", "borough", "--code-property", "code", "--name-property", "name", f"{geo}/london_boroughs_2013.geojson"])
    run([*g, "import", "--level", "ward", "--code-property", "WD13CD", "--name-property", "WD13NM", f"{geo}/london_wards_2013.geojson"])
    run([*g, "import", "--level", "lsoa", "--code-property", "LSOA11CD", "--name-property", "LSOA11NM", f"{geo}/london_lsoa_2011.geojson"])
    run([*g, "import-postcodes", f"{REF}/postcodes/london_postcodes_2014.csv"])
    log(f"geography imported in {time.monotonic() - t0:.1f} s")

    # Feeds.
    os.makedirs(f"{WORK}/feeds")
    fd = f"{WORK}/feeds"
    gen_stats = []
    site_feeds = [Feed(f"{fd}/{c}.csv", c, RECORDS_PER_SITE, 1000 + i, frm, to, f"{SALT}:{c}:main")
                  for i, c in enumerate(main_codes)]
    extra = Feed(f"{fd}/extra.csv", main_codes[0], EXTRA_ROWS, 5000, frm, to, f"{SALT}:{main_codes[0]}:extra")
    make_feeds(site_feeds + [extra], "site feeds with hashed ids", gen_stats)
    seq = None
    if MODE == "all" and SEQ_ROWS:
        seq = Feed(f"{fd}/seqtest.csv", main_codes[0], SEQ_ROWS, 7000, frm, to, f"{SALT}:seqtest", keep_sequential=True)
        make_feeds([seq], "random-vs-sequential feed", gen_stats)
    mixed_feeds = {}
    if MIXED:
        for ph, base in (("unloaded", 10000), ("loaded", 20000)):
            mixed_feeds[ph] = [Feed(f"{fd}/mixed-{ph}-{c}.csv", c, MIXED_ROWS, base + i, mixed_from, END,
                                    f"{SALT}:{c}:mixed-{ph}", parts=MIXED_UPLOADS)
                               for i, c in enumerate(codes[:MIXED_SITES])]
            make_feeds(mixed_feeds[ph], f"mixed-load feeds ({ph})", gen_stats)

    backends = ["sqlite"] + (["pg"] if use_pg else [])
    ingest = {b: {} for b in backends}
    store = {b: {} for b in backends}
    http_res = {}
    mixed_res = {}
    queries = None
    duck = duck_stats = None
    duck_info = {}
    records_total = RECORDS_PER_SITE * SITES + EXTRA_ROWS

    for b in backends:
        name = {"sqlite": "SQLite", "pg": "PostgreSQL"}[b]
        srv = Server(f"store-{b}", b)
        try:
            srv.add_sites(codes)
            srv.start()
            ing = ingest[b]
            ing["ready_s"] = srv.ready_s
            log(f"{name}: server ready in {srv.ready_s:.1f} s; uploading")
            sync()
            t = upload_cli(srv, site_feeds[0].site, site_feeds[0].path, site_feeds[0].rows)
            ing["empty"] = (site_feeds[0].rows, t)
            log(f"  first site's file into the empty store: {site_feeds[0].rows / t:,.0f} rows/s")
            rest = site_feeds[1:]
            if rest:
                sync()
                t0 = time.monotonic()
                with cf.ThreadPoolExecutor(UPLOAD_JOBS) as ex:
                    times = list(ex.map(lambda f: upload_cli(srv, f.site, f.path, f.rows), rest))
                wall = time.monotonic() - t0
                rows = sum(f.rows for f in rest)
                ing["bulk"] = (rows, wall, min(f.rows / t for f, t in zip(rest, times)),
                               max(f.rows / t for f, t in zip(rest, times)))
                log(f"  {len(rest)} more files, {UPLOAD_JOBS} at a time: {rows / wall:,.0f} rows/s overall")
            sync()
            t = upload_cli(srv, extra.site, extra.path, extra.rows)
            ing["full"] = (extra.rows, t)
            log(f"  {fmt_int(extra.rows)} fresh records into the full store: {extra.rows / t:,.0f} rows/s")
            st = store[b]
            st["records"] = records_total
            t0 = time.monotonic()
            st["disk"], st["disk_note"], st["tables"] = srv.disk_bytes()
            log(f"  disk: {st['disk']:,} bytes = {st['disk'] / records_total:.0f} B/record ({time.monotonic() - t0:.1f} s to measure)")
            if queries is None:
                borough = pick_borough(srv)
                queries = query_set(borough)
                log(f"  borough for the one-borough queries: {borough}")
            if MODE == "all":
                http_res[b] = bench_http(srv, queries, records_total, name)
            st["mem_after_queries"] = srv.status()
            log(f"  server memory after the queries: {st['mem_after_queries']}")
            if b == "sqlite" and MODE == "all":
                duck_info = {}
                duck = duck_load(srv, duck_info)
            if MIXED and (b == "sqlite" or MIXED_PG):
                log(f"{name}: mixed load")
                mixed_res[b] = [mixed_phase(srv, mixed_feeds["unloaded"], queries, 0, "uploads alone"),
                                mixed_phase(srv, mixed_feeds["loaded"], queries, CLIENTS, f"uploads with {CLIENTS} query clients")]
                st["mem_after_mixed"] = srv.status()
        finally:
            srv.close()
        if duck is not None and duck_stats is None:
            log("DuckDB: the query set")
            duck_stats = bench_duck(duck, queries)

    # Random vs sequential ids, each into a fresh empty store.
    if seq:
        for b in backends:
            for kind, path in (("sequential", seq.seq_path), ("random", seq.path)):
                srv = Server(f"seq-{b}-{kind}", b)
                try:
                    srv.add_sites([seq.site])
                    srv.start()
                    sync()
                    t = upload_cli(srv, seq.site, path, seq.rows)
                    ingest[b][kind] = (seq.rows, t)
                    log(f"{b}: {fmt_int(seq.rows)} {kind} ids into an empty store: {seq.rows / t:,.0f} rows/s")
                finally:
                    srv.close()

    # ----------------------------------------------------------------------
    # Report.
    names = {"sqlite": "SQLite", "pg": "PostgreSQL"}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    say("# istv query benchmark\n")
    say(f"{SITES} sites x {fmt_int(RECORDS_PER_SITE)} records over {YEARS} years ({START} to {END}), "
        f"then {fmt_int(EXTRA_ROWS)} more: {fmt_int(records_total)} records; "
        f"REPEAT {REPEAT}; istv {commit or '?'} ({os.path.basename(ISTV)} release build); "
        f"{os.cpu_count()} cores ({cpu}); "
        + (f"DuckDB {duck_info['version']} on {duck_info['threads']} threads; " if duck_info else "")
        + f"run on {dt.date.today()}.\n")

    say("## Feed\n")
    say("| step | files | rows | wall | generate (s per 1M rows, one core) | rewrite ids (s per 1M rows, one core) |")
    say("|---|---|---|---|---|---|")
    for label, n, rows, wall, gen, rw, again in gen_stats:
        say(f"| {label} | {n} | {fmt_int(rows)} | {wall:.1f} s ({per_m(wall, rows):.2f} s/1M, {GEN_JOBS} at a time) | "
            f"{per_m(gen, rows):.2f} | {per_m(rw, rows):.2f} |")
    say("")
    say("Record ids: 20 hex digits of BLAKE2b(salt, generated id), unique per site.\n")

    say("## Ingest\n")
    say("| measurement | " + " | ".join(names[b] for b in backends) + " |")
    say("|---|" + "---|" * len(backends))

    def cell(b, key, fn):
        v = ingest[b].get(key) if key in ingest[b] else store[b].get(key)
        return fn(v) if v is not None else "-"

    rate = lambda v: f"{v[0] / v[1]:,.0f} rows/s"  # noqa: E731
    rows_ = [
        ("start to ready (geocoding tables built)", "ready_s", lambda v: f"{v:.1f} s"),
        (f"first site's file ({fmt_int(RECORDS_PER_SITE)} rows) into the empty store", "empty", rate),
        (f"the other {SITES - 1} sites' files, {UPLOAD_JOBS} uploads at a time", "bulk",
         lambda v: f"{v[0] / v[1]:,.0f} rows/s overall ({v[2]:,.0f}-{v[3]:,.0f} per upload)"),
        (f"{fmt_int(EXTRA_ROWS)} fresh records into the full store", "full", rate),
        (f"{fmt_int(SEQ_ROWS)} records, sequential ids, fresh store", "sequential", rate),
        (f"the same records, hashed (random-order) ids, fresh store", "random", rate),
    ]
    for label, key, fn in rows_:
        if any(key in ingest[b] for b in backends):
            say(f"| {label} | " + " | ".join(cell(b, key, fn) for b in backends) + " |")
    say("| disk bytes per record (full store) | " + " | ".join(
        f"{store[b]['disk'] / store[b]['records']:.0f} ({fmt_bytes(store[b]['disk'])})" if "disk" in store[b] else "-"
        for b in backends) + " |")
    say("| largest tables and indexes | " + " | ".join(
        ", ".join(f"{n} {fmt_bytes(s)}" for n, s in store[b].get("tables", [])[:5]) or "-" for b in backends) + " |")
    say("| server memory after the query runs (VmHWM / VmRSS) | " + " | ".join(
        f"{store[b]['mem_after_queries'].get('VmHWM')} / {store[b]['mem_after_queries'].get('VmRSS')} MB"
        if "mem_after_queries" in store[b] else "-" for b in backends) + " |")
    if any("mem_after_mixed" in store[b] for b in backends):
        say("| server memory after the mixed load (VmHWM / VmRSS) | " + " | ".join(
            f"{store[b]['mem_after_mixed'].get('VmHWM')} / {store[b]['mem_after_mixed'].get('VmRSS')} MB"
            if "mem_after_mixed" in store[b] else "-" for b in backends) + " |")
    say("")
    say("SQLite disk: " + (store["sqlite"].get("disk_note") or "-") + (
        "; PostgreSQL: pg_database_size (WAL is the cluster's, not counted)." if use_pg else "."))
    if duck_info:
        n = duck_info["rows"]
        say(f"Loading DuckDB: sqlite3 CSV export {duck_info['export_s']:.1f} s ({per_m(duck_info['export_s'], n):.2f} s/1M rows, "
            f"{fmt_bytes(duck_info['csv_bytes'])}), DuckDB read_csv into a table {duck_info['load_s']:.1f} s "
            f"({per_m(duck_info['load_s'], n):.2f} s/1M rows).")
    say("")

    if http_res:
        say("## Queries\n")
        say(f"Latency over HTTP from the request to the last byte of the body, "
            f"p50 / p99 by nearest rank of REPEAT={REPEAT} runs after a warm-up "
            f"(fewer when a query had taken {QUERY_BUDGET_S} s; n given when fewer). "
            "DuckDB: the same groups in SQL on an in-memory table, fetched into Python.\n")
        head = "| # | query | groups | istv SQLite p50 / p99 | "
        if "pg" in http_res:
            head += "istv PostgreSQL p50 / p99 | "
        head += "DuckDB p50 / p99 | DuckDB p50 / istv SQLite p50 |"
        if "pg" in http_res:
            head += " DuckDB p50 / istv PostgreSQL p50 |"
        say(head)
        say("|" + "---|" * (head.count("|") - 1))
        for q in queries:
            s = http_res["sqlite"][q.id]
            n = lambda r: "" if len(r["times"]) >= REPEAT else f" (n={len(r['times'])})"  # noqa: E731
            line = f"| {q.id} | {q.label}: {q.markdown()} | {len(s['norm'] or {}):,} | {pq(s['times'])}{n(s)} | "
            if "pg" in http_res:
                p = http_res["pg"][q.id]
                line += f"{pq(p['times'])}{n(p)} | "
            d = duck_stats[q.id] if duck_stats else None
            line += f"{pq(d['times']) if d else '-'} | "
            def ratio(a, b):
                x, y = nearest_rank(a, 0.5), nearest_rank(b, 0.5)
                return f"{x / y:.2g}" if a and b and y > 0 else "-"

            if d:
                line += f"{ratio(d['times'], s['times'])} |"
                if "pg" in http_res:
                    line += f" {ratio(d['times'], http_res['pg'][q.id]['times'])} |"
            else:
                line += " - |" + (" - |" if "pg" in http_res else "")
            say(line)
        say("")
        say("### Checks\n")
        say("Each istv answer: 200, the same body (or the same groups) on every run, labels of the right form, "
            f"published counts >= {SUPPRESS_BELOW} (the servers run with --suppress-below {SUPPRESS_BELOW} and "
            "perturbation off, so that every figure is exact), totals within the records stored (exact for the two "
            "queries over everything). Against DuckDB, group by group: each published count equals DuckDB's count "
            f"of the group, each suppressed group has 1-{SUPPRESS_BELOW - 1} records in DuckDB, and DuckDB has no "
            "group the API lacks; so DuckDB's total = the API's published total + DuckDB's records in the "
            "suppressed groups.\n")
        say("| # | sanity (SQLite) | API groups (suppressed) | DuckDB total = published + in suppressed groups | exact per group |"
            + (" PostgreSQL == SQLite |" if "pg" in http_res else ""))
        say("|---|---|---|---|---|" + ("---|" if "pg" in http_res else ""))
        failures = 0
        for q in queries:
            s = http_res["sqlite"][q.id]
            san = "ok" if not s["problems"] else "; ".join(s["problems"])
            failures += bool(s["problems"])
            if duck_stats and s["norm"] is not None:
                c = compare(s["norm"], duck_stats[q.id]["norm"])
                tot = (f"{c['duck_total']:,} = {c['api_published']:,} + {c['duck_on_suppressed']:,}"
                       + ("" if c["duck_total"] == c["api_published"] + c["duck_on_suppressed"] else " (NOT EQUAL)"))
                ex = "yes" if not c["mismatches"] else f"NO: {len(c['mismatches'])} groups, e.g. {'; '.join(c['mismatches'][:3])}"
                failures += bool(c["mismatches"])
                grp = f"{c['groups']:,} ({c['suppressed']:,})"
            else:
                tot = ex = grp = "-"
            line = f"| {q.id} | {san} | {grp} | {tot} | {ex} |"
            if "pg" in http_res:
                p = http_res["pg"][q.id]
                same = p["norm"] is not None and p["norm"] == s["norm"]
                failures += not same or bool(p["problems"])
                line += " yes |" if same and not p["problems"] else f" NO {'; '.join(p['problems'])} |"
            say(line)
        say("")
        say(f"Checks: {'all passed' if not failures else f'{failures} FAILED'}.\n")

    for b, phases in mixed_res.items():
        say(f"## Mixed load ({names[b]})\n")
        a, l = phases
        tool = ("Python threads, one persistent connection each" if l["tool"] == "python"
                else "wrk on 2 threads, one persistent connection per client; latency of every response")
        say(f"{a['sites']} sites each uploading {fmt_int(MIXED_ROWS)} fresh records (days {mixed_from} to {END}) "
            f"in {MIXED_UPLOADS} uploads, at most {MIXED_PER_SITE} at a time per site (Python threads), to the "
            f"loaded store; first alone, then with {l['clients']} query clients looping over the query set "
            f"({tool}) until the uploads are done; each phase stops starting requests after MIXED_MAX_S="
            f"{MIXED_MAX_S} s.\n")
        say("| measurement | uploads alone | uploads with query clients |")
        say("|---|---|---|")

        def thr(x):
            cut = ""
            if x["rows"] != x["expected"]:
                cut = (f"; only {fmt_int(x['rows'])} of {fmt_int(x['expected'])} rows: {x['failed_uploads']} uploads "
                       f"given up, {x['not_sent']} not sent before MIXED_MAX_S")
            return f"{x['rate']:,.0f} rows/s ({fmt_int(x['rows'])} rows in {x['upload_s']:.1f} s{cut})"

        say(f"| upload throughput (rows accepted / time to the last receipt) | {thr(a)} | {thr(l)} |")
        say(f"| upload responses by status | {a['up_status']} | {l['up_status']} |")
        say(f"| queries answered 200 | - | {l['queries']:,}, p50 {ms(l['p50'])}, p99 {ms(l['p99'])} |")
        say(f"| query responses by status | - | {l['q_status']} |")
        fails = sum(v for d in (l["q_status"], l["up_status"], a["up_status"]) for k, v in d.items()
                    if k not in ("200", "503 with Retry-After"))
        say(f"| failures (not 200, not 503 with Retry-After) | - | {fails} |")
        if l["tool"] == "python":
            say(f"| client keeping up: CPU of its process, requests in flight | - | {l['cpu_share'] * 100:.0f}% of one core "
                f"(uploads included); in flight mean {l['mean_inflight']:.0f}, peak {l['peak_inflight']} of {l['clients']}; "
                f"gap between a response and the next request p50 {l['gap_p50'] * 1e6:.0f} us, p99 {l['gap_p99'] * 1e6:.0f} us |")
        else:
            say(f"| client: CPU of wrk | - | {l['cpu_share'] * 100:.0f}% of one core |")
        say("")
        if l["tool"] == "python" and (l["cpu_share"] > 0.7 or l["gap_p99"] > 0.01):
            say("**The Python client may not have kept up** (its process used over 70% of a core, which its "
                "interpreter lock allows at most, or a thread took over 10 ms at p99 to send its next request): "
                "run again with LOAD_TOOL=wrk.\n")
        for ph in (a, l):
            for k, v in ph["samples"].items():
                say(f"- {ph['label']}, first {k}: `{v[:200]}`")
        say("")
        if l["lat"]:
            say("| # | query | answered 200 | p50 / p99 under load |")
            say("|---|---|---|---|")
            for q in queries:
                xs = l["lat"].get(q.id, [])
                say(f"| {q.id} | {q.label} | {len(xs)} | {pq(xs)} |")
            say("")
    print("\n".join(report))
    sys.stdout.flush()


def _term(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _term)
    main()
