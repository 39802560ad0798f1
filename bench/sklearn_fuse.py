#!/usr/bin/python3
"""The Python-stack baseline of the fusion benchmark: scikit-learn soft voting
over per-view pipelines, reading and writing latefuse's JSONL records.

  bench/sklearn_fuse.py WORKLOAD_DIR IN.jsonl OUT.jsonl [--chunk 65536]
  bench/sklearn_fuse.py --check LATEFUSE_OUT.jsonl SKLEARN_OUT.jsonl

WORKLOAD_DIR is one of bench/make_workloads.py's directories: its
workload.json names the views and their pickled Pipeline(StandardScaler,
LogisticRegression). Records are read in chunks of --chunk lines; each chunk
is grouped by availability pattern (which views are present), and each
group's fused probabilities are what VotingClassifier(voting='soft') computes
over the present views: the mean of their predict_proba (np.average, as
VotingClassifier.predict_proba). A row with no view abstains. One output
record per input line, in latefuse's format (DESIGN.md, "Records in and
out"). Dense values are cast to float32 and then float64, as latefuse's
records carry them. Prints the rows, the seconds (reading, predicting and
writing; not the interpreter's start or loading the models) and rows/s on
stderr, and `rows_per_s=N` on stdout.

--check compares two output files line by line: the same ids, statuses,
labels, used and missing views, and probabilities within 1e-9 (absolute).
Prints the largest difference; exits 1 on any mismatch.
"""
import argparse
import json
import os
import pickle
import sys
import time

import numpy as np

TOLERANCE = 1e-9


def load_workload(directory):
    with open(os.path.join(directory, "workload.json")) as f:
        meta = json.load(f)
    models = []
    for view in meta["views"]:
        with open(os.path.join(directory, view["sklearn"]), "rb") as f:
            models.append(pickle.load(f))
    return meta, models


def fuse_chunk(lines, meta, models, out):
    names = [v["name"] for v in meta["views"]]
    widths = [v["width"] for v in meta["views"]]
    classes = meta["classes"]
    records = [json.loads(line) for line in lines]
    n, views = len(records), len(names)
    present = np.zeros((n, views), dtype=bool)
    columns = [np.zeros((n, w), dtype=np.float32) for w in widths]
    for r, record in enumerate(records):
        given = record.get("modalities") or {}
        for k, name in enumerate(names):
            value = given.get(name)
            if value is not None:
                present[r, k] = True
                columns[k][r] = value
    fused = np.full((n, len(classes)), np.nan)
    patterns = present.dot(1 << np.arange(views))
    for pattern in np.unique(patterns):
        rows = np.flatnonzero(patterns == pattern)
        used = [k for k in range(views) if pattern >> k & 1]
        if not used:
            continue
        probas = [models[k].predict_proba(
            columns[k][rows].astype(np.float64)) for k in used]
        fused[rows] = np.average(probas, axis=0)
    labels = np.argmax(fused[:, :], axis=1) if n else []
    for r, record in enumerate(records):
        used = [names[k] for k in range(views) if present[r, k]]
        missing = [names[k] for k in range(views) if not present[r, k]]
        ok = bool(used)
        out.write(json.dumps({
            "id": record.get("id"),
            "status": "ok" if ok else "abstain",
            "label": classes[labels[r]] if ok else None,
            "probabilities": dict(zip(classes, fused[r].tolist())) if ok
            else None,
            "used": used, "missing": missing, "failed": {}}) + "\n")


def run(args):
    meta, models = load_workload(args.workload)
    start = time.perf_counter()
    rows = 0
    with open(args.input, encoding="utf-8") as src, \
            open(args.output, "w", encoding="utf-8") as out:
        chunk = []
        for line in src:
            chunk.append(line)
            if len(chunk) == args.chunk:
                fuse_chunk(chunk, meta, models, out)
                rows += len(chunk)
                chunk = []
        fuse_chunk(chunk, meta, models, out)
        rows += len(chunk)
    seconds = time.perf_counter() - start
    sys.stderr.write("sklearn_fuse: %s: %d rows in %.2f s, %.0f rows/s\n"
                     % (meta["name"], rows, seconds, rows / seconds))
    print("rows_per_s=%.1f" % (rows / seconds))


def check(latefuse_path, sklearn_path):
    worst, rows = 0.0, 0
    with open(latefuse_path) as a, open(sklearn_path) as b:
        for number, (la, lb) in enumerate(zip(a, b), start=1):
            x, y = json.loads(la), json.loads(lb)
            for key in ("id", "status", "label", "used", "missing"):
                if x.get(key) != y.get(key):
                    sys.exit("check: line %d: %s differs: %r vs %r"
                             % (number, key, x.get(key), y.get(key)))
            if (x["probabilities"] is None) != (y["probabilities"] is None):
                sys.exit("check: line %d: probabilities differ" % number)
            for c, p in (x["probabilities"] or {}).items():
                worst = max(worst, abs(p - y["probabilities"][c]))
            rows += 1
        if a.readline() or b.readline():
            sys.exit("check: the files have different numbers of lines")
    verdict = "ok" if worst <= TOLERANCE else "FAIL"
    print("check: %d rows, max |p_latefuse - p_sklearn| = %.3g (%s, "
          "tolerance %g)" % (rows, worst, verdict, TOLERANCE))
    return 0 if worst <= TOLERANCE else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        if len(sys.argv) != 4:
            sys.exit(__doc__)
        return check(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workload")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--chunk", type=int, default=65536)
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
