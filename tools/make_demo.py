#!/usr/bin/python3
"""Generates the seeded ICU deterioration demo under configs/demo/.

A synthetic, but physiologically plausible, late-fusion demo with classes
[stable, deteriorating] and three modalities:

  vitals   dense 12: heart_rate (bpm), sbp (mmHg), dbp (mmHg), map (mmHg),
           resp_rate (breaths/min), spo2 (%), temp_c (deg C), gcs (3-15),
           urine_ml_kg_h (ml/kg/h), fio2 (fraction 0.21-1.0), age (years),
           shock_index (heart_rate / sbp)
  labs     dense 8:  lactate (mmol/L), creatinine (mg/dL), wbc (10^9/L),
           haemoglobin (g/dL), platelets (10^9/L), sodium (mmol/L),
           potassium (mmol/L), bilirubin (mg/dL)
  imaging  dense 16: a chest X-ray embedding (emb_00..emb_15) made from a
           disease-related latent factor, three nuisance factors and noise

Each modality sees the patient's state through its own noisy latent severity,
so each alone is informative but imperfect and fusing them helps.

The script trains one StandardScaler + LogisticRegression per modality on a
generated training set (not committed), measures them on a generated held-out
set (not committed), and writes:

  configs/demo/models/<modality>.json   latefuse.linear/v1 model files
  configs/demo/data/patients.jsonl      ~1000 evaluation records with realistic
                                        missing modalities and labels
  configs/demo/data/fit.jsonl           ~2000 more, for `latefuse fit`
  configs/demo/pipeline.yaml            the pipeline (weighted_mean combiner)
  configs/demo/README.md                what the demo is and how it was made

Deterministic: fixed seeds, no time or environment dependence; running it twice
gives byte-identical files. Needs Debian's python3 with numpy and scikit-learn.

Usage: tools/make_demo.py [--out DIR]   (default: configs/demo beside tools/)
"""

import argparse
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CLASSES = ["stable", "deteriorating"]
PREVALENCE = 0.25  # P(deteriorating)

SEED = 20240611
N_TRAIN = 8000
N_HELDOUT = 4000
N_EVAL = 1000
N_FIT = 2000

MODALITIES = ["vitals", "labs", "imaging"]

# (name, unit, decimals written to the data file)
VITALS = [
    ("heart_rate", "bpm", 0),
    ("sbp", "mmHg, systolic blood pressure", 0),
    ("dbp", "mmHg, diastolic blood pressure", 0),
    ("map", "mmHg, mean arterial pressure = (sbp + 2 dbp) / 3", 1),
    ("resp_rate", "breaths/min", 0),
    ("spo2", "%, peripheral oxygen saturation", 0),
    ("temp_c", "degrees Celsius", 1),
    ("gcs", "Glasgow Coma Scale, 3-15", 0),
    ("urine_ml_kg_h", "ml/kg/h, urine output over the last hours", 2),
    ("fio2", "fraction of inspired oxygen, 0.21 = room air", 2),
    ("age", "years", 0),
    ("shock_index", "heart_rate / sbp", 3),
]
LABS = [
    ("lactate", "mmol/L", 1),
    ("creatinine", "mg/dL", 2),
    ("wbc", "10^9/L, white cell count", 1),
    ("haemoglobin", "g/dL", 1),
    ("platelets", "10^9/L", 0),
    ("sodium", "mmol/L", 0),
    ("potassium", "mmol/L", 1),
    ("bilirubin", "mg/dL, total", 1),
]
IMAGING_DIM = 16
IMAGING_DECIMALS = 4

# Separation of each modality's latent severity between the classes (in SDs).
SEPARATION = {"vitals": 1.25, "labs": 1.3, "imaging": 1.05}
# Share of a nuisance acuity factor common to all modalities (correlates them).
SHARED = 0.3

# Presence model for the evaluation set (see README).
P_NOTHING = 0.015  # just admitted: nothing recorded yet
P_VITALS = 0.985  # among the others
P_LABS = {0: 0.61, 1: 0.76}  # labs are ordered more often for sicker patients
P_IMAGING = {0: 0.42, 1: 0.54}
P_NULL = 0.5  # a missing modality is written as null (else the key is absent)


def _clip(x, lo, hi):
    return np.clip(x, lo, hi)


def _round(a, decimals):
    return np.round(a, decimals)


def generate(rng, n, imaging_w):
    """Draws n patients; returns dict modality -> float64 [n, d] and y (0/1)."""
    y = (rng.random(n) < PREVALENCE).astype(np.int64)
    shared = rng.standard_normal(n)

    def latent(m):
        own = rng.standard_normal(n)
        return (SEPARATION[m] * y + SHARED * shared +
                np.sqrt(1.0 - SHARED**2) * own)

    zv, zl, zi = latent("vitals"), latent("labs"), latent("imaging")
    N = lambda: rng.standard_normal(n)  # noqa: E731

    # Vitals.
    hr = _round(_clip(80 + 8 * zv + 11 * N(), 35, 190), 0)
    sbp = _round(_clip(124 - 8 * zv + 15 * N(), 60, 230), 0)
    dbp = _round(_clip(70 - 4 * zv + 0.35 * (sbp - 124) + 7 * N(), 30, 130), 0)
    dbp = np.minimum(dbp, sbp - 10)
    mean_ap = _round((sbp + 2 * dbp) / 3, 1)
    rr = _round(_clip(16 + 2.5 * zv + 2.8 * N(), 6, 45), 0)
    spo2 = _round(_clip(97 - 1.3 * zv + 1.4 * N(), 70, 100), 0)
    temp = _round(_clip(37.0 + 0.3 * zv + 0.5 * N(), 34.5, 41.5), 1)
    gcs = _round(_clip(15 - np.maximum(0, 1.3 * zv + 1.1 * N() - 1.0), 3, 15), 0)
    urine = _round(_clip(1.0 * np.exp(-0.25 * zv + 0.4 * N()), 0, 6), 2)
    fio2 = _round(_clip(0.21 + np.maximum(0, 0.09 * zv + 0.09 * N() - 0.06),
                        0.21, 1.0), 2)
    age = _round(_clip(63 + 4 * y + 16 * N(), 18, 98), 0)
    shock = _round(hr / sbp, 3)
    vitals = np.column_stack([hr, sbp, dbp, mean_ap, rr, spo2, temp, gcs,
                              urine, fio2, age, shock])

    # Labs.
    lactate = _round(_clip(1.1 * np.exp(0.3 * zl + 0.4 * N()), 0.3, 15), 1)
    creat = _round(_clip(0.95 * np.exp(0.22 * zl + 0.4 * N()), 0.2, 12), 2)
    wbc = _round(_clip(8.5 * np.exp(0.15 * zl + 0.35 * N()), 0.5, 60), 1)
    hgb = _round(_clip(12.5 - 0.5 * zl + 1.7 * N(), 5, 18.5), 1)
    plt = _round(_clip(240 * np.exp(-0.12 * zl + 0.35 * N()), 8, 900), 0)
    sodium = _round(_clip(139 - 0.8 * zl + 3.2 * N(), 118, 162), 0)
    potassium = _round(_clip(4.1 + 0.15 * zl + 0.45 * N(), 2.5, 7.0), 1)
    bili = _round(_clip(0.7 * np.exp(0.2 * zl + 0.55 * N()), 0.1, 20), 1)
    labs = np.column_stack([lactate, creat, wbc, hgb, plt, sodium, potassium,
                            bili])

    # Imaging: [disease factor, 3 nuisance factors] @ W + noise.
    factors = np.column_stack([zi, N(), N(), N()])
    emb = factors @ imaging_w + 0.7 * rng.standard_normal((n, IMAGING_DIM))
    imaging = _round(emb, IMAGING_DECIMALS)

    return {"vitals": vitals, "labs": labs, "imaging": imaging}, y


def export_linear(pipe):
    scaler, clf = pipe.steps[0][1], pipe.steps[1][1]
    assert list(clf.classes_) == [0, 1]
    return {
        "format": "latefuse.linear/v1",
        "classes": CLASSES,
        "coef": [[float(v) for v in row] for row in clf.coef_],
        "intercept": [float(v) for v in clf.intercept_],
        "scaler": {"mean": [float(v) for v in scaler.mean_],
                   "scale": [float(v) for v in scaler.scale_]},
    }


def linear_proba(model, x):
    """P(deteriorating) from an exported model, as the linear plugin computes it."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    s = model["scaler"]
    z = (x - np.array(s["mean"])) / np.array(s["scale"])
    d = z @ np.array(model["coef"][0]) + model["intercept"][0]
    return 1.0 / (1.0 + np.exp(-d))


def dumps_json(obj, indent=0):
    """json.dumps with one level of indentation per container, except that a
    list of scalars (a row of numbers) stays on one line. Floats use repr."""
    pad = " " * (indent + 1)
    if isinstance(obj, dict) and obj:
        items = ["%s%s: %s" % (pad, json.dumps(k), dumps_json(v, indent + 1))
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list) and any(isinstance(v, (list, dict)) for v in obj):
        items = [pad + dumps_json(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(obj)


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


PIPELINE_TEMPLATE = """\
# ICU deterioration demo: late fusion of vitals, labs and a chest X-ray embedding.
# Generated by tools/make_demo.py (seeded); edit the script, not this file.
apiVersion: latefuse/v1
name: icu-deterioration
task: classification
classes: [stable, deteriorating]
plugin_dirs: [../../build/plugins]          # relative to this file

modalities:
  # 12 bedside vitals: heart_rate, sbp, dbp, map, resp_rate, spo2, temp_c, gcs,
  # urine_ml_kg_h, fio2, age, shock_index. Present for ~97% of patients.
  - name: vitals
    input: {{kind: dense, size: 12}}
    model:
      plugin: linear
      version: "^1.0"
      params: {{model: models/vitals.json}}     # paths relative to this file
    on_error: missing                         # a failing model makes the modality missing

  # 8 labs: lactate, creatinine, wbc, haemoglobin, platelets, sodium, potassium,
  # bilirubin. Missing when not drawn yet (~35% of patients).
  - name: labs
    input: {{kind: dense, size: 8}}
    model:
      plugin: linear
      version: "^1.0"
      params: {{model: models/labs.json}}
    on_error: missing

  # 16-dim chest X-ray embedding. Missing when there is no scan yet (~55%).
  - name: imaging
    input: {{kind: dense, size: 16}}
    model:
      plugin: linear
      version: "^1.0"
      params: {{model: models/imaging.json}}
    on_error: missing
    timeout_ms: 250                           # overrunning -> imaging missing for those rows

# Weighted mean over the modalities present in each row. Weights are proportional
# to each modality's held-out skill (log-loss reduction over the class prior, in
# nats: {skills}), scaled so the largest is 1.
combiner:
  plugin: weighted_mean
  params: {{weights: {{vitals: {w_vitals}, labs: {w_labs}, imaging: {w_imaging}}}}}

policy:
  min_modalities: 1                           # a row with no modality at all...
  on_insufficient: abstain                    # ...gets status "abstain"
"""

README_TEMPLATE = """\
# ICU deterioration demo

A synthetic late-fusion demo: predict whether an ICU patient is `stable` or
`deteriorating` from up to three modalities, any of which may be missing. Every
file here is generated by `tools/make_demo.py` (fixed seeds, byte-identical on
every run); regenerate with `tools/make_demo.py` from the repository root
(Debian's `/usr/bin/python3` with numpy and scikit-learn). Do not edit by hand.

| file | what |
|---|---|
| `pipeline.yaml` | the pipeline: three `linear` models, `weighted_mean` combiner |
| `models/<modality>.json` | `latefuse.linear/v1` StandardScaler + LogisticRegression |
| `data/patients.jsonl` | {n_eval} labelled input records (`{{"id", "modalities", "label"}}`) |
| `data/fit.jsonl` | {n_fit} more labelled records, drawn the same way, for `latefuse fit` (combiners and calibrators are fitted on rows the models never saw) |

The data are synthetic, not from patients. About {prev_pct}% are `deteriorating`.
Each patient has a class and a shared acuity factor; each modality sees a noisy
latent severity of its own, so each modality alone is informative but imperfect
and fusing helps.

## Modalities and features (in order)

- `vitals` (dense 12): heart_rate (bpm), sbp (mmHg), dbp (mmHg), map (mmHg, (sbp +
  2 dbp) / 3), resp_rate (breaths/min), spo2 (%), temp_c (deg C), gcs (Glasgow Coma
  Scale 3-15), urine_ml_kg_h (ml/kg/h), fio2 (0.21 = room air), age (years),
  shock_index (heart_rate / sbp).
- `labs` (dense 8): lactate (mmol/L), creatinine (mg/dL), wbc (10^9/L), haemoglobin
  (g/dL), platelets (10^9/L), sodium (mmol/L), potassium (mmol/L), bilirubin (mg/dL).
- `imaging` (dense 16): emb_00..emb_15, a chest X-ray embedding built from a
  disease-related latent factor and three nuisance factors (projection, habitus,
  devices) plus noise.

Values are rounded to 0-4 decimals for readability; the host reads them as float32.

## Missingness (evaluation set)

- {p_nothing_pct}% of patients have nothing recorded yet (just admitted): all three
  modalities missing, so the pipeline abstains.
- Otherwise vitals are present with probability {p_vitals}; labs (drawn or not
  yet) with probability {p_labs0} for stable and {p_labs1} for deteriorating
  patients (sicker patients get bloods sooner); imaging (scan done or not yet)
  with {p_img0} / {p_img1}. Draws are independent given the class.
- A missing modality is written either as an absent key or as `null` (half each).

Observed in `data/patients.jsonl`: vitals {pres_vitals}%, labs {pres_labs}%,
imaging {pres_imaging}% present; {n_all} rows with all three, {n_none} with none.

## Models and weights

Each model was fitted on {n_train} generated patients (not committed) with every
modality present, and measured on {n_heldout} more (not committed):

| modality | held-out AUC | skill (nats) | weight |
|---|---|---|---|
{model_rows}

Weighted-mean fusion with every modality present: held-out AUC {fused_auc}.
On `data/patients.jsonl` with its missing modalities (rows with at least one
modality): fused AUC {eval_auc}.
"""


def draw_records(x, y, rng, prefix, models, weights):
    """Labelled input records of x with realistic missingness drawn from rng.

    Returns the JSONL lines, the presence masks, and the weighted-mean fusion's
    numerator and denominator per row."""
    n = len(y)
    nothing = rng.random(n) < P_NOTHING
    present = {
        "vitals": rng.random(n) < P_VITALS,
        "labs": rng.random(n) < np.where(y == 1, P_LABS[1], P_LABS[0]),
        "imaging": rng.random(n) < np.where(y == 1, P_IMAGING[1],
                                            P_IMAGING[0]),
    }
    for m in MODALITIES:
        present[m] &= ~nothing
    as_null = {m: rng.random(n) < P_NULL for m in MODALITIES}
    decimals = {
        "vitals": [d for _, _, d in VITALS],
        "labs": [d for _, _, d in LABS],
        "imaging": [IMAGING_DECIMALS] * IMAGING_DIM,
    }

    lines = []
    num = np.zeros(n)
    den = np.zeros(n)
    for i in range(n):
        mods = {}
        for m in MODALITIES:
            if present[m][i]:
                mods[m] = [round(float(v), d) for v, d in zip(x[m][i], decimals[m])]
                p = linear_proba(models[m], np.array(mods[m])[None, :])[0]
                num[i] += weights[m] * p
                den[i] += weights[m]
            elif as_null[m][i]:
                mods[m] = None
        rec = {"id": "%s-%04d" % (prefix, i + 1), "modalities": mods,
               "label": CLASSES[int(y[i])]}
        lines.append(json.dumps(rec) + "\n")
    return lines, present, num, den


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "configs", "demo"))
    args = ap.parse_args()
    out = os.path.normpath(args.out)

    ss = np.random.SeedSequence(SEED)
    s_w, s_train, s_held, s_eval, s_miss = ss.spawn(5)
    imaging_w = np.random.default_rng(s_w).normal(0.0, 1.0, (4, IMAGING_DIM))
    imaging_w[0] *= 0.6  # the disease factor is a modest part of the image

    xtr, ytr = generate(np.random.default_rng(s_train), N_TRAIN, imaging_w)
    xho, yho = generate(np.random.default_rng(s_held), N_HELDOUT, imaging_w)
    xev, yev = generate(np.random.default_rng(s_eval), N_EVAL, imaging_w)

    prior = np.full(N_HELDOUT, ytr.mean())
    prior_loss = log_loss(yho, prior, labels=[0, 1])
    models, auc, skill, p_ho = {}, {}, {}, {}
    for m in MODALITIES:
        # Train exactly on what the host will see: float32 values.
        x = xtr[m].astype(np.float32).astype(np.float64)
        pipe = make_pipeline(StandardScaler(),
                             LogisticRegression(C=1.0, max_iter=1000))
        pipe.fit(x, ytr)
        models[m] = export_linear(pipe)
        p = linear_proba(models[m], xho[m])
        ref = pipe.predict_proba(xho[m].astype(np.float32).astype(np.float64))[:, 1]
        assert np.max(np.abs(p - ref)) < 1e-12, m
        p_ho[m] = p
        auc[m] = roc_auc_score(yho, p)
        skill[m] = prior_loss - log_loss(yho, p, labels=[0, 1])

    top = max(skill.values())
    weights = {m: round(skill[m] / top, 2) for m in MODALITIES}
    wsum = sum(weights.values())
    fused_ho = sum(weights[m] * p_ho[m] for m in MODALITIES) / wsum
    fused_auc = roc_auc_score(yho, fused_ho)

    lines, present, num, den = draw_records(
        xev, yev, np.random.default_rng(s_miss), "p", models, weights)
    # A second labelled set, drawn like the first, for `latefuse fit`: combiners
    # and calibrators are fitted on rows the modality models never saw.
    s_fit, s_fit_miss = ss.spawn(2)
    xfit, yfit = generate(np.random.default_rng(s_fit), N_FIT, imaging_w)
    fit_lines, _, _, _ = draw_records(
        xfit, yfit, np.random.default_rng(s_fit_miss), "f", models, weights)
    any_present = den > 0
    eval_auc = roc_auc_score(yev[any_present], num[any_present] / den[any_present])

    for m in MODALITIES:
        write_text(os.path.join(out, "models", m + ".json"),
                   dumps_json(models[m]) + "\n")
    write_text(os.path.join(out, "data", "patients.jsonl"), "".join(lines))
    write_text(os.path.join(out, "data", "fit.jsonl"), "".join(fit_lines))

    write_text(os.path.join(out, "pipeline.yaml"), PIPELINE_TEMPLATE.format(
        skills=", ".join("%s %.3f" % (m, skill[m]) for m in MODALITIES),
        w_vitals=weights["vitals"], w_labs=weights["labs"],
        w_imaging=weights["imaging"]))

    n_present = {m: int(present[m].sum()) for m in MODALITIES}
    n_all = int(np.sum(present["vitals"] & present["labs"] & present["imaging"]))
    n_none = int(np.sum(~(present["vitals"] | present["labs"] | present["imaging"])))
    pct = lambda k: "%.1f" % (100.0 * k / N_EVAL)  # noqa: E731
    write_text(os.path.join(out, "README.md"), README_TEMPLATE.format(
        n_eval=N_EVAL, n_fit=N_FIT, prev_pct=int(round(100 * PREVALENCE)),
        p_nothing_pct="%.1f" % (100 * P_NOTHING), p_vitals=P_VITALS,
        p_labs0=P_LABS[0], p_labs1=P_LABS[1], p_img0=P_IMAGING[0],
        p_img1=P_IMAGING[1],
        pres_vitals=pct(n_present["vitals"]), pres_labs=pct(n_present["labs"]),
        pres_imaging=pct(n_present["imaging"]), n_all=n_all, n_none=n_none,
        n_train=N_TRAIN, n_heldout=N_HELDOUT,
        model_rows="\n".join("| `%s` | %.3f | %.3f | %s |" % (
            m, auc[m], skill[m], weights[m]) for m in MODALITIES),
        fused_auc="%.3f" % fused_auc, eval_auc="%.3f" % eval_auc))

    print("make_demo: wrote %s" % out)
    print("  training %d, held-out %d (deteriorating %.1f%%), evaluation %d "
          "(deteriorating %.1f%%)" % (N_TRAIN, N_HELDOUT, 100 * yho.mean(),
                                      N_EVAL, 100 * yev.mean()))
    for m in MODALITIES:
        print("  %-8s held-out AUC %.3f  skill %.3f nats  weight %-4s  present %s%%"
              % (m, auc[m], skill[m], weights[m], pct(n_present[m])))
    print("  fused (weighted_mean, all present) held-out AUC %.3f" % fused_auc)
    print("  fused on patients.jsonl (%d rows with >= 1 modality) AUC %.3f"
          % (int(any_present.sum()), eval_auc))
    print("  rows with all three %d, with none %d" % (n_all, n_none))
    return 0


if __name__ == "__main__":
    sys.exit(main())
