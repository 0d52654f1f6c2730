#!/usr/bin/env python3
"""What a star-tree (Apache Pinot's index) would cost and read over a store.

A design measurement for the query engine, not part of istv: it reads an
SQLite store's records into DuckDB and, for a split order of dimensions and
a leaf threshold T, counts the star-tree's nodes and documents exactly (as
Pinot builds it: a node with more than T documents is split by the next
dimension into a child per value and a star child that sums that dimension
away; a document is a distinct tuple of the dimensions below the node) and,
for each query of a list, how many documents the query reads (the documents
of the leaves its traversal reaches). Prints a Markdown table.

  python3 scripts/startree_estimate.py STORE.db [T ...]
  DIMS=month,cell7,method,location_type,age_band,sex,site python3 scripts/startree_estimate.py STORE.db 1000
  python3 scripts/startree_estimate.py --check   # against a literal tree

Dimensions of the tree (DIMS; by default the portal's filters and the
dimensions of its trend, breakdowns and top areas): month, borough,
assault method, location type, age band, sex, site. A query filters by a
month range and any of the others, and groups by one of them; queries
that name a dimension the tree lacks are left out.
"""

import itertools
import os
import subprocess
import sys
import tempfile
import time

import duckdb

# Every dimension a tree can split by, as SQL over the store's records
# table. The resolution-7 cell is the store's finest cell with its
# resolution set to 7 and the finer digits unused (h3o's bit layout).
R7 = (7 << 52) | ((1 << (3 * (15 - 7))) - 1)
NO_RES = ~(0xF << 52)
COLUMNS = {
    "month": "substr(day, 1, 7)",
    "borough": "coalesce(borough, '')",
    "ward": "coalesce(ward, '')",
    "method": "assault_method",
    "location_type": "location_type",
    "age_band": "age_band",
    "sex": "sex",
    "site": "site_code",
    "hour": "coalesce(hour, -1)",
    "weekday": "strftime('%w', day)",
    "cell7": f"CASE WHEN cell IS NULL OR ((cell >> 52) & 15) < 7 THEN 0 ELSE ((cell & ({NO_RES})) | {R7}) END",
}
# The split order: DIMS in the environment (comma-separated names of
# COLUMNS), else the portal's filters and its trend, breakdowns and top
# areas.
DIMS = os.environ.get("DIMS", "month,borough,method,location_type,age_band,sex,site").split(",")


def load(db):
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "records.csv")
        with open(csv, "w") as f:
            subprocess.run(
                ["sqlite3", "-batch", "-csv", db,
                 f"SELECT {', '.join(COLUMNS[d] for d in DIMS)} FROM records"],
                stdout=f, check=True)
        cols = ", ".join(f"'{d}': 'VARCHAR'" for d in DIMS)
        con.execute(
            f"CREATE TABLE base AS SELECT {', '.join(DIMS)}, count(*) AS n FROM read_csv('{csv}', "
            f"header = false, columns = {{{cols}}}, auto_detect = false) GROUP BY ALL")
    return con


def nodes(con, T):
    """Every node of the tree: (mask, path values) -> documents. The mask's
    bit i is set where the path takes the star child at depth i."""
    n = len(DIMS)
    tree = {(): {(): con.execute("SELECT count(*) FROM base").fetchone()[0]}}
    for k in range(1, n + 1):
        for mask in itertools.product((False, True), repeat=k):
            parent = tree.get(mask[:-1])
            if not parent or max(parent.values()) <= T:
                continue
            keep = [DIMS[i] for i in range(k) if not mask[i]]
            rest = DIMS[k:]
            # Documents of a node: distinct tuples of the dimensions below it.
            inner = ", ".join(keep + rest) or "1"
            outer = ", ".join(keep)
            sql = (f"SELECT {outer + ', ' if outer else ''}count(*) FROM "
                   f"(SELECT DISTINCT {inner} FROM base)" + (f" GROUP BY {outer}" if outer else ""))
            level = {}
            for row in con.execute(sql).fetchall():
                key = tuple(row[:-1])
                parent_key = tuple(row[:-1][: len(keep) - (0 if mask[-1] else 1)])
                if parent.get(parent_key, 0) > T:
                    level[key] = row[-1]
            if level:
                tree[mask] = level
    return tree


def documents(tree):
    """Stored documents: the base's, and each star node's own."""
    total = tree[()][()]
    for mask, level in tree.items():
        if mask and mask[-1]:
            total += sum(level.values())
    return total


def reads(tree, T, filters, group):
    """Documents read by a query: the traversal takes the value child of a
    dimension it filters or groups by, else the star child, and reads every
    leaf it reaches whole."""
    n = len(DIMS)
    wanted = [d in filters or d == group for d in DIMS]
    mask = tuple(not w for w in wanted)
    total = 0
    for k in range(n + 1):
        level = tree.get(mask[:k])
        if level is None:
            break
        values = [filters.get(DIMS[i]) for i in range(k) if not mask[i]]
        for key, docs in level.items():
            if any(v is not None and key[j] not in v for j, v in enumerate(values)):
                continue
            deeper = k < n and mask[: k + 1] in tree
            if docs <= T or k == n or not deeper:
                total += docs
    return total


def self_check():
    """The counts above against Pinot's algorithm run literally (a node
    split by recursion into value and star children) on random data."""
    global DIMS
    import collections
    import random
    random.seed(7)
    DIMS = ["a", "b", "c", "d"]
    vals = {"a": 5, "b": 4, "c": 3, "d": 6}
    rows = collections.Counter()
    for _ in range(3000):
        t = tuple(str(random.randrange(vals[d]) if random.random() < 0.8 else 0) for d in DIMS)
        rows[t] += 1
    con = duckdb.connect()
    con.execute("CREATE TABLE base (a VARCHAR, b VARCHAR, c VARCHAR, d VARCHAR, n BIGINT)")
    con.executemany("INSERT INTO base VALUES (?, ?, ?, ?, ?)", [list(k) + [v] for k, v in rows.items()])

    def build(docs, depth, T):
        # docs: set of tuples over dims[depth:]; returns node dict
        node = {"docs": len(docs), "children": {}, "star": None}
        if len(docs) <= T or depth == len(DIMS):
            return node
        by = collections.defaultdict(set)
        for t in docs:
            by[t[0]].add(t[1:])
        for v, sub in by.items():
            node["children"][v] = build(sub, depth + 1, T)
        node["star"] = build({t[1:] for t in docs}, depth + 1, T)
        return node

    def brute_reads(node, depth, filters, group):
        if not node["children"] and node["star"] is None:
            return node["docs"]
        d = DIMS[depth]
        if d in filters or d == group:
            want = filters.get(d)
            return sum(brute_reads(c, depth + 1, filters, group) for v, c in node["children"].items() if want is None or v in want)
        return brute_reads(node["star"], depth + 1, filters, group)

    def brute_docs(node, via_star):
        total = node["docs"] if via_star else 0
        for c in node["children"].values():
            total += brute_docs(c, False)
        if node["star"] is not None:
            total += brute_docs(node["star"], True)
        return total

    def count_nodes(node):
        return 1 + sum(count_nodes(c) for c in node["children"].values()) + (count_nodes(node["star"]) if node["star"] else 0)

    base = set(rows)
    ok = True
    for T in (1, 5, 20, 100, 400):
        root = build(base, 0, T)
        tree = nodes(con, T)
        n_est = sum(len(v) for v in tree.values())
        d_est = documents(tree)
        d_bru = len(base) + brute_docs(root, False)
        if (n_est, d_est) != (count_nodes(root), d_bru):
            ok = False
            print("T", T, "nodes", n_est, count_nodes(root), "docs", d_est, d_bru)
        for _ in range(200):
            dims = random.sample(DIMS, random.randrange(0, 4))
            filters = {d: {str(random.randrange(vals[d]))} for d in dims}
            group = random.choice(DIMS + [None])
            if group in filters:
                continue
            a, b = reads(tree, T, filters, group), brute_reads(root, 0, filters, group)
            if a != b:
                ok = False
                print("T", T, filters, group, "est", a, "brute", b)
                break
    print("the estimate agrees with the literal tree" if ok else "DISAGREE")
    return ok


def main():
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if self_check() else 1)
    db = sys.argv[1]
    thresholds = [int(t) for t in sys.argv[2:]] or [1000]
    t0 = time.monotonic()
    con = load(db)
    records, base = con.execute("SELECT sum(n), count(*) FROM base").fetchone()
    months = [r[0] for r in con.execute("SELECT DISTINCT month FROM base ORDER BY 1").fetchall()]
    top = lambda d: con.execute(f"SELECT {d} FROM base GROUP BY 1 ORDER BY sum(n) DESC LIMIT 1").fetchone()[0]
    year = set(months[-12:])
    f = {d: {top(d)} if d in DIMS else None for d in ("method", "location_type", "age_band", "sex", "borough", "site")}
    queries = [
        ("month, everything", {}, "month"),
        ("borough, last 12 months", {"month": year}, "borough"),
        ("method, last 12 months, age band and sex", {"month": year, "age_band": f["age_band"], "sex": f["sex"]}, "method"),
        ("borough, last 12 months, method and place", {"month": year, "method": f["method"], "location_type": f["location_type"]}, "borough"),
        ("month, one borough, method and sex", {"borough": f["borough"], "method": f["method"], "sex": f["sex"]}, "month"),
        ("place type, 12 months, borough, age, sex, site", {"month": year, "borough": f["borough"], "age_band": f["age_band"], "sex": f["sex"], "site": f["site"]}, "location_type"),
    ]
    if "cell7" in DIMS:
        queries.append(("resolution-7 cells, 12 months, method and sex", {"month": year, "method": f["method"], "sex": f["sex"]}, "cell7"))
    if "hour" in DIMS:
        queries.append(("hour, 12 months, place and age band", {"month": year, "location_type": f["location_type"], "age_band": f["age_band"]}, "hour"))
    queries = [q for q in queries if all(d in DIMS for d in list(q[1]) + [q[2]])]
    print(f"{records:,} records, {base:,} distinct tuples of {', '.join(DIMS)}; loaded in {time.monotonic() - t0:.0f} s")
    print()
    print("| T | nodes | documents | documents per record | " + " | ".join(q[0] for q in queries) + " |")
    print("|---|---|---|---|" + "---|" * len(queries))
    for T in thresholds:
        t1 = time.monotonic()
        tree = nodes(con, T)
        count = sum(len(v) for v in tree.values())
        docs = documents(tree)
        row = [f"{reads(tree, T, q[1], q[2]):,}" for q in queries]
        print(f"| {T:,} | {count:,} | {docs:,} | {docs / records:.3f} | " + " | ".join(row) + " |", flush=True)
        print(f"(T={T}: {time.monotonic() - t1:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
