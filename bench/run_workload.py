#!/usr/bin/python3
"""Workloads for `latefuse run` end to end (bench/run.sh): issue 9's shapes.

breast cancer as 3 views of 10 features (2 classes) and digits as 4 quadrants of
16 pixels (10 classes), from the copies Debian's python3-sklearn ships; each view
gets a StandardScaler + LogisticRegression written as a `linear` model file, and a
pipeline fuses the views with `mean`. Rows are drawn at random from the dataset
and each view is missing (left out of the record) with probability 0.3. Values
are written as json.dumps writes float64: the shortest text that reads back.

  /usr/bin/python3 bench/run_workload.py OUT_DIR PLUGIN_DIR ROWS...
  # OUT_DIR/{bc,digits}/pipeline.yaml and rows<N>.jsonl for each N
"""
import json
import os
import sys

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

MISSING = 0.3


def breast_cancer():
    d = load_breast_cancer()
    views = [d.data[:, 10 * i:10 * i + 10] for i in range(3)]
    return views, d.target, ["malignant", "benign"], ["v0", "v1", "v2"]


def digits():
    d = load_digits()
    x = d.data.reshape(-1, 8, 8)
    quadrants = [x[:, :4, :4], x[:, :4, 4:], x[:, 4:, :4], x[:, 4:, 4:]]
    return ([q.reshape(-1, 16) for q in quadrants], d.target,
            [str(c) for c in range(10)], ["q0", "q1", "q2", "q3"])


def write_workload(out, plugin_dir, rows, views, y, classes, names, seed):
    os.makedirs(out, exist_ok=True)
    modalities = []
    for name, v in zip(names, views):
        scaler = StandardScaler().fit(v)
        model = LogisticRegression(max_iter=5000).fit(scaler.transform(v), y)
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump({"format": "latefuse.linear/v1", "classes": classes,
                       "coef": model.coef_.tolist(),
                       "intercept": model.intercept_.tolist(),
                       "scaler": {"mean": scaler.mean_.tolist(),
                                  "scale": scaler.scale_.tolist()}}, f)
        modalities.append(
            f"  - name: {name}\n"
            f"    input: {{kind: dense, size: {v.shape[1]}}}\n"
            f"    model: {{plugin: linear, version: \"^1.0\", "
            f"params: {{model: {name}.json}}}}\n")
    with open(os.path.join(out, "pipeline.yaml"), "w") as f:
        f.write("apiVersion: latefuse/v1\n"
                f"name: run-{os.path.basename(out)}\n"
                "task: classification\n"
                f"classes: [{', '.join(json.dumps(c) for c in classes)}]\n"
                f"plugin_dirs: [{json.dumps(plugin_dir)}]\n"
                "modalities:\n" + "".join(modalities) +
                "combiner: {plugin: mean}\n"
                "policy: {min_modalities: 1, on_insufficient: abstain}\n")
    texts = [[", ".join(json.dumps(float(x)) for x in row) for row in v]
             for v in views]
    rng = np.random.default_rng(seed)
    for n in rows:
        pick = rng.integers(0, len(y), n)
        missing = rng.random((n, len(views))) < MISSING
        with open(os.path.join(out, f"rows{n}.jsonl"), "w") as f:
            for r in range(n):
                i = pick[r]
                present = ", ".join(f'"{name}": [{texts[k][i]}]'
                                    for k, name in enumerate(names)
                                    if not missing[r, k])
                f.write(f'{{"id": "r-{r:07d}", "modalities": {{{present}}}, '
                        f'"label": {json.dumps(classes[y[i]])}}}\n')


def main():
    out, plugin_dir = sys.argv[1], os.path.abspath(sys.argv[2])
    rows = [int(n) for n in sys.argv[3:]]
    write_workload(os.path.join(out, "bc"), plugin_dir, rows, *breast_cancer(),
                   seed=7)
    write_workload(os.path.join(out, "digits"), plugin_dir, rows, *digits(),
                   seed=8)


if __name__ == "__main__":
    main()
