#!/usr/bin/env bash
# tfidf_linear's infer against scikit-learn's Pipeline(TfidfVectorizer,
# LogisticRegression).predict_proba, same model, same texts, one run:
#
#   bench/tfidf.sh [BUILD_DIR]     # default: build
#
# Fits a 3-class (1, 2)-gram sublinear model on make_tfidf_fixtures.py's
# synthetic multilingual corpus, exports it with tools/export_sklearn.py, times
# predict_proba on 10000 texts (time.perf_counter, best of 5), runs
# BUILD_DIR/bench/tfidf_bench on the same files, and prints both rows/s and
# their ratio.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build}"
bench="$build/bench/tfidf_bench"
[ -x "$bench" ] || { echo "tfidf.sh: no $bench (build first)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sklearn_rows_per_s="$(/usr/bin/python3 - "$root" "$work" <<'PY'
import json, os, sys, time
import numpy as np
root, work = sys.argv[1], sys.argv[2]
sys.path[:0] = [os.path.join(root, "tools"), os.path.join(root, "tests", "fixtures")]
import export_sklearn
import make_tfidf_fixtures as fx
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
rng = np.random.default_rng(1234)
train, ys = fx.corpus(rng, 2000, fx.CLASSES)
pipe = Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                 ("lr", LogisticRegression(C=20.0, max_iter=5000))]).fit(train, ys)
texts, _ = fx.corpus(rng, 10000, fx.CLASSES)
with open(os.path.join(work, "model.json"), "w", encoding="utf-8") as f:
    f.write(export_sklearn.dumps(export_sklearn.export_tfidf(pipe)))
with open(os.path.join(work, "texts.json"), "w", encoding="utf-8") as f:
    json.dump(texts, f, ensure_ascii=False)
best = float("inf")
for _ in range(5):
    t0 = time.perf_counter()
    pipe.predict_proba(texts)
    best = min(best, time.perf_counter() - t0)
print(len(texts) / best)
PY
)"

LATEFUSE_TFIDF_MODEL="$work/model.json" LATEFUSE_TFIDF_TEXTS="$work/texts.json" \
  "$bench" --benchmark_format=json --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true >"$work/bench.json"

/usr/bin/python3 - "$work/bench.json" "$sklearn_rows_per_s" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
plugin = max(b["items_per_second"] for b in runs if b.get("aggregate_name") == "median")
sk = float(sys.argv[2])
print("%-34s %14s" % ("10000 texts, 3 classes, (1,2)-grams", "rows/s"))
print("%-34s %14.0f" % ("tfidf_linear infer (C ABI)", plugin))
print("%-34s %14.0f" % ("scikit-learn predict_proba", sk))
print("%-34s %13.1fx" % ("ratio plugin / scikit-learn", plugin / sk))
PY
