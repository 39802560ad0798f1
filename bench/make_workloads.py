#!/usr/bin/python3
"""Generates the fusion benchmark's workloads: per-view models, pipelines and
tiled JSONL records.

  bench/make_workloads.py OUT_DIR PLUGIN_DIR [--rows 1000000,10000]
                          [--mfeat-rows 100000,10000] [--missing 0.3]
                          [--seed 9] [--mfeat DIR]

Workloads (one directory each under OUT_DIR):
  breast_cancer  scikit-learn's breast cancer set as 3 views of 10 features
                 (mean, se, worst), 2 classes
  digits         scikit-learn's 8x8 digits as 4 quadrants of 16 pixels,
                 10 classes
  mfeat          the 5 views of ../shared/data/mfeat (factors 216, karhunen 64,
                 morphological 6, pixel 240, zernike 47), 10 classes; only when
                 that directory exists (--mfeat overrides where to look)

For each view: a scikit-learn Pipeline(StandardScaler, LogisticRegression)
fitted on the whole set (features cast to float32 first, as latefuse's dense
inputs travel), pickled as models/<view>.pkl and exported with
tools/export_sklearn.py as models/<view>.json (latefuse.linear/v1). The
pipeline (pipeline.yaml) runs each view with the `linear` plugin and fuses
with the `mean` combiner, which over the present views is scikit-learn's
VotingClassifier(voting='soft'): p = the mean of the present views'
predict_proba. Records: the set's rows tiled to each --rows count, each view
missing (absent from `modalities`) with probability --missing, independently
and seeded; a row with every view missing abstains. workload.json describes
the views for bench/sklearn_fuse.py and bench/engine_bench. Nothing here is
committed: the script is.
"""
import argparse
import json
import os
import pickle
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import export_sklearn  # noqa: E402

MFEAT_VIEWS = ["factors", "karhunen", "morphological", "pixel", "zernike"]


def breast_cancer():
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    labels = np.array([data.target_names[t] for t in data.target])
    # The 30 columns are 10 measurements' mean, standard error and worst value.
    views = [("mean", data.data[:, 0:10]), ("se", data.data[:, 10:20]),
             ("worst", data.data[:, 20:30])]
    return views, labels


def digits():
    from sklearn.datasets import load_digits
    data = load_digits()
    images = data.images  # [n, 8, 8]
    views = []
    for name, rows, cols in [("top_left", slice(0, 4), slice(0, 4)),
                             ("top_right", slice(0, 4), slice(4, 8)),
                             ("bottom_left", slice(4, 8), slice(0, 4)),
                             ("bottom_right", slice(4, 8), slice(4, 8))]:
        views.append((name, images[:, rows, cols].reshape(len(images), 16)))
    return views, np.array([str(t) for t in data.target])


def mfeat(directory):
    views, labels = [], None
    for name in MFEAT_VIEWS:
        table = np.genfromtxt(os.path.join(directory, name + ".csv"),
                              delimiter=",", skip_header=1)
        views.append((name, table[:, :-1]))
        # class 1..10 is the digit 0..9
        view_labels = np.array([str(int(c) - 1) for c in table[:, -1]])
        if labels is not None and not np.array_equal(labels, view_labels):
            sys.exit("make_workloads: %s: rows do not align with %s"
                     % (name, MFEAT_VIEWS[0]))
        labels = view_labels
    return views, labels


def fit(x, labels):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    return Pipeline([("scaler", StandardScaler()),
                     ("lr", LogisticRegression(max_iter=10000))]).fit(x, labels)


def float32_texts(x):
    """Each row's JSON list of its values at float32 precision: the shortest
    text that parses back to the same float32."""
    return ["[" + ",".join(np.format_float_positional(v, unique=True, trim="-")
                           for v in row) + "]" for row in x]


def write_records(path, names, texts, labels, rows, missing, rng):
    """Tiles the set's rows to `rows` records; each view is absent with
    probability `missing`."""
    n = len(labels)
    absent = rng.random((rows, len(names))) < missing
    with open(path, "w", encoding="utf-8") as out:
        lines = []
        for r in range(rows):
            i = r % n
            views = ",".join('"%s":%s' % (names[k], texts[k][i])
                             for k in range(len(names)) if not absent[r, k])
            lines.append('{"id":"r%d","modalities":{%s},"label":"%s"}\n'
                         % (r, views, labels[i]))
            if len(lines) == 10000:
                out.writelines(lines)
                lines = []
        out.writelines(lines)


def make(out_dir, name, views, labels, plugin_dir, row_counts, missing, seed):
    directory = os.path.join(out_dir, name)
    os.makedirs(os.path.join(directory, "models"), exist_ok=True)
    names = [v for v, _ in views]
    # Fitted and stored on float32 values: what the records carry.
    xs = [x.astype(np.float32) for _, x in views]
    classes = None
    for view, x in zip(names, xs):
        model = fit(x.astype(np.float64), labels)
        with open(os.path.join(directory, "models", view + ".pkl"), "wb") as f:
            pickle.dump(model, f)
        exported = export_sklearn.export_linear(model)
        with open(os.path.join(directory, "models", view + ".json"), "w",
                  encoding="utf-8") as f:
            f.write(export_sklearn.dumps(exported))
        classes = exported["classes"]
    yaml = ["# Generated by bench/make_workloads.py; soft voting over the "
            "present views.",
            "apiVersion: latefuse/v1",
            "name: %s" % name.replace("_", "-"),
            "task: classification",
            "classes: [%s]" % ", ".join(json.dumps(c) for c in classes),
            "plugin_dirs: [%s]" % json.dumps(os.path.abspath(plugin_dir)),
            "modalities:"]
    for view, x in zip(names, xs):
        yaml += ["  - name: %s" % view,
                 "    input: {kind: dense, size: %d}" % x.shape[1],
                 "    model: {plugin: linear, version: \"^1.0\", "
                 "params: {model: models/%s.json}}" % view]
    yaml += ["combiner: {plugin: mean}",
             "policy: {min_modalities: 1, on_insufficient: abstain}", ""]
    with open(os.path.join(directory, "pipeline.yaml"), "w") as f:
        f.write("\n".join(yaml))
    meta = {"name": name, "classes": classes, "missing": missing,
            "views": [{"name": v, "width": int(x.shape[1]),
                       "model": "models/%s.json" % v,
                       "sklearn": "models/%s.pkl" % v}
                      for v, x in zip(names, xs)],
            "records": {}}
    texts = [float32_texts(x) for x in xs]
    for rows in row_counts:
        file_name = "rows_%d.jsonl" % rows
        rng = np.random.default_rng([seed, rows])
        write_records(os.path.join(directory, file_name), names, texts, labels,
                      rows, missing, rng)
        meta["records"][str(rows)] = file_name
    with open(os.path.join(directory, "workload.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("make_workloads: %s: %d views, %d classes, rows %s" %
          (directory, len(names), len(classes), row_counts))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("plugin_dir", help="the build's plugins directory")
    parser.add_argument("--rows", default="1000000,10000")
    parser.add_argument("--mfeat-rows", default="100000,10000")
    parser.add_argument("--missing", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--mfeat", default=os.path.join(
        os.path.dirname(os.path.dirname(HERE)), "shared", "data", "mfeat"))
    args = parser.parse_args()
    row_counts = [int(r) for r in args.rows.split(",")]
    workloads = [("breast_cancer", breast_cancer, row_counts),
                 ("digits", digits, row_counts)]
    if os.path.isdir(args.mfeat):
        workloads.append(("mfeat", lambda: mfeat(args.mfeat),
                          [int(r) for r in args.mfeat_rows.split(",")]))
    else:
        print("make_workloads: no %s, skipping mfeat" % args.mfeat)
    for name, load, rows in workloads:
        views, labels = load()
        make(args.out_dir, name, views, labels, args.plugin_dir, rows,
             args.missing, args.seed)


if __name__ == "__main__":
    main()
