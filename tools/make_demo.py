#!/usr/bin/python3
"""Generates the seeded ICU deterioration demo under configs/demo/.

A synthetic, but physiologically plausible, late-fusion demo with classes
[stable, deteriorating] and five modalities:

  vitals   dense 12: heart_rate (bpm), sbp (mmHg), dbp (mmHg), map (mmHg),
           resp_rate (breaths/min), spo2 (%), temp_c (deg C), gcs (3-15),
           urine_ml_kg_h (ml/kg/h), fio2 (fraction 0.21-1.0), age (years),
           shock_index (heart_rate / sbp)
  labs     dense 8:  lactate (mmol/L), creatinine (mg/dL), wbc (10^9/L),
           haemoglobin (g/dL), platelets (10^9/L), sodium (mmol/L),
           potassium (mmol/L), bilirubin (mg/dL)
  imaging  dense 16: a chest X-ray embedding (emb_00..emb_15) made from a
           disease-related latent factor, three nuisance factors and noise
  notes    text: a short synthetic nursing note built from class-dependent
           phrases, neutral filler and noise (mixed case, punctuation)
  wearable dense 6:  steps_24h, resting_hr (bpm), hrv_ms (ms), sleep_h (h),
           skin_temp_c (deg C), spo2_dips (count/24h) from a wrist wearable

Each modality sees the patient's state through its own noisy latent severity,
so each alone is informative but imperfect and fusing them helps.

The script trains one StandardScaler + LogisticRegression per dense clinical
modality, a TfidfVectorizer + LogisticRegression for notes and an XGBClassifier
for wearable on a generated training set (not committed), measures them on a
generated held-out set (not committed), and writes:

  configs/demo/models/<modality>.json   latefuse.linear/v1 model files (vitals,
                                        labs, imaging), latefuse.tfidf/v1
                                        (notes), XGBoost JSON (wearable)
  configs/demo/data/patients.jsonl      ~1000 evaluation records with realistic
                                        missing modalities and labels
  configs/demo/data/fit.jsonl           ~2000 more, for `latefuse fit`
  configs/demo/pipeline.yaml            the pipeline (weighted_mean combiner)
  configs/demo/README.md                what the demo is and how it was made

Deterministic: fixed seeds, no time or environment dependence; running it twice
gives byte-identical files. The notes and wearable data are drawn from seeds
spawned after the original three modalities' ones, so adding them changed none
of the earlier values. Needs Debian's python3 with numpy, scikit-learn and
xgboost (python3-xgboost).

Usage: tools/make_demo.py [--out DIR]   (default: configs/demo beside tools/)
"""

import argparse
import json
import os
import re
import sys
import tempfile

import numpy as np
import xgboost as xgb
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_sklearn import dumps as export_dumps  # noqa: E402
from export_sklearn import export_tfidf  # noqa: E402

CLASSES = ["stable", "deteriorating"]
PREVALENCE = 0.25  # P(deteriorating)

SEED = 20240611
N_TRAIN = 8000
N_HELDOUT = 4000
N_EVAL = 1000
N_FIT = 2000

LINEAR_MODALITIES = ["vitals", "labs", "imaging"]
EXTRA_MODALITIES = ["notes", "wearable"]
MODALITIES = LINEAR_MODALITIES + EXTRA_MODALITIES

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
WEARABLE = [
    ("steps_24h", "steps over the last 24 h", 0),
    ("resting_hr", "bpm, resting heart rate", 0),
    ("hrv_ms", "ms, heart-rate variability (RMSSD)", 0),
    ("sleep_h", "hours of sleep over the last night", 1),
    ("skin_temp_c", "degrees Celsius, wrist skin temperature", 2),
    ("spo2_dips", "count of SpO2 dips below 90% over the last 24 h", 0),
]

# Nursing-note phrases: concerning, reassuring and neutral filler.
NOTE_CONCERN = [
    "increasing O2 requirement", "drowsy", "rising lactate flagged",
    "new confusion", "hypotensive overnight, fluid bolus given",
    "reduced urine output", "febrile 38.9", "tachypnoeic",
    "increased work of breathing", "medical review requested",
    "poor oral intake", "mottled peripheries", "NEWS score up",
    "agitated overnight", "clammy and pale", "outreach team called",
]
NOTE_REASSURE = [
    "pt alert", "obs stable", "tolerating diet", "mobilising with physio",
    "pain well controlled", "settled overnight", "on room air",
    "sitting out in chair", "good urine output", "afebrile",
    "chatting with family", "plan for step down", "eating and drinking well",
    "slept well",
]
NOTE_FILLER = [
    "cannula resited", "family visited", "skin intact", "bowels opened",
    "meds given as charted", "pressure areas checked", "bloods sent",
    "chart reviewed", "IV abx continued", "awaiting results",
    "washed and changed", "obs 4 hourly", "catheter in situ", "repositioned",
    "dressing changed", "seen by ward round",
]
NOTE_SEPARATORS = [", ", ", ", ". ", "; ", " - ", ". "]

# Separation of each modality's latent severity between the classes (in SDs).
SEPARATION = {"vitals": 1.25, "labs": 1.3, "imaging": 1.05,
              "notes": 1.7, "wearable": 0.95}
# Share of a nuisance acuity factor common to all modalities (correlates them).
SHARED = 0.3

# Presence model for the evaluation set (see README).
P_NOTHING = 0.015  # just admitted: nothing recorded yet
P_VITALS = 0.985  # among the others
P_LABS = {0: 0.61, 1: 0.76}  # labs are ordered more often for sicker patients
P_IMAGING = {0: 0.42, 1: 0.54}
P_NULL = 0.5  # a missing modality is written as null (else the key is absent)
P_NOTES = 0.61  # a nursing note written yet (independent of the class)
P_WEARABLE = 0.355  # the patient wears a paired wrist device

XGB_ROUNDS = 30
XGB_DEPTH = 3


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

    return {"vitals": vitals, "labs": labs, "imaging": imaging}, y, shared


def _note(rng, z):
    """One nursing note for a patient of latent severity z."""
    k = int(rng.integers(2, 6))
    p_concern = 1.0 / (1.0 + np.exp(-(1.1 * z - 1.4)))
    phrases = []
    for _ in range(k):
        u = rng.random()
        if u < 0.35:
            phrase = NOTE_FILLER[rng.integers(len(NOTE_FILLER))]
        elif rng.random() < p_concern:
            phrase = NOTE_CONCERN[rng.integers(len(NOTE_CONCERN))]
        else:
            phrase = NOTE_REASSURE[rng.integers(len(NOTE_REASSURE))]
        c = rng.random()
        if c < 0.1:
            phrase = phrase.upper()
        elif c < 0.35:
            phrase = phrase[0].upper() + phrase[1:]
        phrases.append(phrase)
    text = phrases[0]
    for phrase in phrases[1:]:
        text += NOTE_SEPARATORS[rng.integers(len(NOTE_SEPARATORS))] + phrase
    end = rng.random()
    if end < 0.4:
        text += "."
    elif end < 0.5:
        text += " ?"
    elif end < 0.6:
        text += " - for review"
    return text


def generate_extra(rng, y, shared):
    """The notes (list of n texts) and wearable (float64 [n, 6]) modalities of
    the patients y/shared that generate() drew, from their own stream rng."""
    n = len(y)

    def latent(m):
        own = rng.standard_normal(n)
        return (SEPARATION[m] * y + SHARED * shared +
                np.sqrt(1.0 - SHARED**2) * own)

    zn, zw = latent("notes"), latent("wearable")
    N = lambda: rng.standard_normal(n)  # noqa: E731
    notes = [_note(rng, z) for z in zn]

    steps = _round(_clip(4500 * np.exp(-0.35 * zw + 0.5 * N()), 50, 30000), 0)
    rhr = _round(_clip(68 + 5 * zw + 8 * N(), 38, 150), 0)
    hrv = _round(_clip(42 * np.exp(-0.25 * zw + 0.4 * N()), 5, 200), 0)
    sleep = _round(_clip(6.8 - 0.45 * zw + 1.2 * N(), 0.5, 12), 1)
    skin = _round(_clip(33.5 + 0.25 * zw + 0.5 * N(), 30, 37.5), 2)
    dips = rng.poisson(np.exp(0.4 + 0.45 * np.clip(zw, -3, 4))).astype(np.float64)
    wearable = np.column_stack([steps, rhr, hrv, sleep, skin, dips])
    return {"notes": notes, "wearable": wearable}


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


def tfidf_proba(model, texts):
    """P(deteriorating) from a latefuse.tfidf/v1 dict, read independently of
    scikit-learn (what the tfidf_linear plugin computes)."""
    assert model["token_pattern"] == r"(?u)\b\w\w+\b"
    vocab, idf = model["vocabulary"], np.array(model["idf"])
    coef, b = np.array(model["coef"][0]), model["intercept"][0]
    lo, hi = model["ngram_range"]
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        if model["lowercase"]:
            text = text.lower()
        tokens = re.findall(model["token_pattern"], text)
        counts = {}
        for k in range(lo, hi + 1):
            for j in range(len(tokens) - k + 1):
                col = vocab.get(" ".join(tokens[j:j + k]))
                if col is not None:
                    counts[col] = counts.get(col, 0) + 1
        cols = np.array(sorted(counts), dtype=np.int64)
        tf = np.array([counts[c] for c in cols], dtype=np.float64)
        if model["sublinear_tf"]:
            tf = 1.0 + np.log(tf)
        v = tf * idf[cols] if model["use_idf"] else tf
        assert model["norm"] == "l2"
        norm = np.sqrt(np.sum(v * v))
        if norm > 0:
            v = v / norm
        out[i] = 1.0 / (1.0 + np.exp(-(v @ coef[cols] + b)))
    return out


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
# ICU deterioration demo: late fusion of vitals, labs, a chest X-ray embedding,
# nursing notes and a wrist wearable.
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

  # Free-text nursing note: TF-IDF (1-2 grams) + logistic regression. Missing
  # when no note has been written yet (~{miss_notes}%).
  - name: notes
    input: {{kind: text}}
    model:
      plugin: tfidf_linear
      version: "^1.0"
      params: {{model: models/notes.json}}
    on_error: missing

  # 6 wrist-wearable features: steps_24h, resting_hr, hrv_ms, sleep_h,
  # skin_temp_c, spo2_dips. XGBoost trees; missing without a paired device (~{miss_wearable}%).
  - name: wearable
    input: {{kind: dense, size: 6}}
    model:
      plugin: xgboost
      version: "^1.0"
      params: {{model: models/wearable.json}}
    on_error: missing

# Weighted mean over the modalities present in each row. Weights are proportional
# to each modality's held-out skill (log-loss reduction over the class prior, in
# nats: {skills}),
# scaled so the largest is 1.
combiner:
  plugin: weighted_mean
  params: {{weights: {{vitals: {w_vitals}, labs: {w_labs}, imaging: {w_imaging},
                      notes: {w_notes}, wearable: {w_wearable}}}}}

policy:
  min_modalities: 1                           # a row with no modality at all...
  on_insufficient: abstain                    # ...gets status "abstain"
"""

README_TEMPLATE = """\
# ICU deterioration demo

A synthetic late-fusion demo: predict whether an ICU patient is `stable` or
`deteriorating` from up to five modalities, any of which may be missing. Every
file here is generated by `tools/make_demo.py` (fixed seeds, byte-identical on
every run); regenerate with `tools/make_demo.py` from the repository root
(Debian's `/usr/bin/python3` with numpy, scikit-learn and xgboost). Do not edit
by hand.

| file | what |
|---|---|
| `pipeline.yaml` | the pipeline: three `linear` models, a `tfidf_linear` and an `xgboost` model, `weighted_mean` combiner |
| `stacking.yaml`, `fitted/stacking.json` | the same modalities with a `stacking` combiner fitted on `data/fit.jsonl` (`latefuse fit`) |
| `models/{{vitals,labs,imaging}}.json` | `latefuse.linear/v1` StandardScaler + LogisticRegression |
| `models/notes.json` | `latefuse.tfidf/v1` TfidfVectorizer((1, 2)-grams, sublinear tf, min_df 2) + LogisticRegression, exported with `tools/export_sklearn.py` |
| `models/wearable.json` | XGBoost JSON: XGBClassifier({xgb_rounds} trees of depth {xgb_depth}, `binary:logistic`), `save_model` |
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
- `notes` (text): a short nursing note of 2-5 phrases, each a concerning phrase
  ("increasing O2 requirement", "rising lactate flagged", ...), a reassuring one
  ("pt alert", "obs stable", "tolerating diet", ...) or neutral filler ("bloods
  sent", ...); the sicker the patient's latent severity, the likelier a clinical
  phrase is concerning. Mixed case and punctuation, e.g. `{note_example}`.
- `wearable` (dense 6): steps_24h, resting_hr (bpm), hrv_ms (ms), sleep_h (hours),
  skin_temp_c (deg C, wrist), spo2_dips (SpO2 dips below 90% in 24 h).

Values are rounded to 0-4 decimals for readability; the host reads them as float32.

## Missingness (evaluation set)

- {p_nothing_pct}% of patients have nothing recorded yet (just admitted): all five
  modalities missing, so the pipeline abstains.
- Otherwise vitals are present with probability {p_vitals}; labs (drawn or not
  yet) with probability {p_labs0} for stable and {p_labs1} for deteriorating
  patients (sicker patients get bloods sooner); imaging (scan done or not yet)
  with {p_img0} / {p_img1}; a nursing note with {p_notes} and a paired wearable
  with {p_wearable}, whatever the class. Draws are independent given the class.
- A missing modality is written either as an absent key or as `null` (half each).

Observed in `data/patients.jsonl`: vitals {pres_vitals}%, labs {pres_labs}%,
imaging {pres_imaging}%, notes {pres_notes}%, wearable {pres_wearable}% present;
{n_all} rows with all five, {n_none} with none.

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


def draw_records(x, y, rng, prefix, probas, weights, extra_rng):
    """Labelled input records of x with realistic missingness drawn from rng
    (the original three modalities) and extra_rng (notes, wearable).

    probas: modality -> P(deteriorating) per row, as the exported model gives
    it for the written values. Returns the JSONL lines, the presence masks, and
    the weighted-mean fusion's numerator and denominator per row."""
    n = len(y)
    nothing = rng.random(n) < P_NOTHING
    present = {
        "vitals": rng.random(n) < P_VITALS,
        "labs": rng.random(n) < np.where(y == 1, P_LABS[1], P_LABS[0]),
        "imaging": rng.random(n) < np.where(y == 1, P_IMAGING[1],
                                            P_IMAGING[0]),
    }
    for m in LINEAR_MODALITIES:
        present[m] &= ~nothing
    as_null = {m: rng.random(n) < P_NULL for m in LINEAR_MODALITIES}
    # The new modalities draw from their own stream: the draws above are the
    # same as before they existed.
    present["notes"] = extra_rng.random(n) < P_NOTES
    present["wearable"] = extra_rng.random(n) < P_WEARABLE
    for m in EXTRA_MODALITIES:
        present[m] &= ~nothing
        as_null[m] = extra_rng.random(n) < P_NULL

    lines = []
    num = np.zeros(n)
    den = np.zeros(n)
    for i in range(n):
        mods = {}
        for m in MODALITIES:
            if present[m][i]:
                mods[m] = x[m][i]
                num[i] += weights[m] * probas[m][i]
                den[i] += weights[m]
            elif as_null[m][i]:
                mods[m] = None
        rec = {"id": "%s-%04d" % (prefix, i + 1), "modalities": mods,
               "label": CLASSES[int(y[i])]}
        lines.append(json.dumps(rec) + "\n")
    return lines, present, num, den


def written_values(x):
    """The record values of each row of each modality: rounded lists of floats
    for the dense modalities, the text for notes."""
    decimals = {
        "vitals": [d for _, _, d in VITALS],
        "labs": [d for _, _, d in LABS],
        "imaging": [IMAGING_DECIMALS] * IMAGING_DIM,
        "wearable": [d for _, _, d in WEARABLE],
    }
    out = {"notes": list(x["notes"])}
    for m, ds in decimals.items():
        out[m] = [[round(float(v), d) for v, d in zip(row, ds)] for row in x[m]]
    return out


def xgb_proba(booster, values):
    """P(deteriorating) from the booster for rows of values (as float32)."""
    dm = xgb.DMatrix(np.asarray(values, dtype=np.float32))
    return booster.predict(dm).astype(np.float64)


def predict_all(models, booster, values):
    """P(deteriorating) per row and modality from the exported models."""
    p = {m: linear_proba(models[m], np.array(values[m]))
         for m in LINEAR_MODALITIES}
    p["notes"] = tfidf_proba(models["notes"], values["notes"])
    p["wearable"] = xgb_proba(booster, values["wearable"])
    return p


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

    xtr, ytr, shtr = generate(np.random.default_rng(s_train), N_TRAIN, imaging_w)
    xho, yho, shho = generate(np.random.default_rng(s_held), N_HELDOUT, imaging_w)
    xev, yev, shev = generate(np.random.default_rng(s_eval), N_EVAL, imaging_w)
    # A second labelled set, drawn like the first, for `latefuse fit`: combiners
    # and calibrators are fitted on rows the modality models never saw.
    s_fit, s_fit_miss = ss.spawn(2)
    xfit, yfit, shfit = generate(np.random.default_rng(s_fit), N_FIT, imaging_w)
    # notes and wearable: streams spawned after all of the above, so the
    # original modalities' values are unchanged by their addition.
    (s_x_train, s_x_held, s_x_eval, s_x_fit, s_x_miss,
     s_x_fit_miss) = ss.spawn(6)
    for x, y, sh, s in ((xtr, ytr, shtr, s_x_train), (xho, yho, shho, s_x_held),
                        (xev, yev, shev, s_x_eval), (xfit, yfit, shfit, s_x_fit)):
        x.update(generate_extra(np.random.default_rng(s), y, sh))

    prior = np.full(N_HELDOUT, ytr.mean())
    prior_loss = log_loss(yho, prior, labels=[0, 1])
    models, auc, skill, p_ho = {}, {}, {}, {}
    for m in LINEAR_MODALITIES:
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

    # notes: TF-IDF + logistic regression, exported with export_sklearn.
    notes_pipe = Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                  min_df=2)),
        ("lr", LogisticRegression(C=1.0, max_iter=1000))])
    notes_pipe.fit(xtr["notes"], ytr)
    models["notes"] = export_tfidf(notes_pipe)
    assert models["notes"]["classes"] == ["0", "1"]
    models["notes"]["classes"] = list(CLASSES)
    p = tfidf_proba(models["notes"], xho["notes"])
    ref = notes_pipe.predict_proba(xho["notes"])[:, 1]
    assert np.max(np.abs(p - ref)) < 1e-12, "notes"
    p_ho["notes"] = p

    # wearable: gradient-boosted trees, saved as XGBoost JSON.
    clf = xgb.XGBClassifier(n_estimators=XGB_ROUNDS, max_depth=XGB_DEPTH,
                            learning_rate=0.15, objective="binary:logistic",
                            n_jobs=1, random_state=7, tree_method="exact")
    clf.fit(xtr["wearable"].astype(np.float32), ytr)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "wearable.json")
        clf.get_booster().save_model(path)
        with open(path, encoding="utf-8") as f:
            wearable_text = f.read()
        booster = xgb.Booster(model_file=path)
        booster.set_param({"nthread": 1})
    p = xgb_proba(booster, xho["wearable"])
    ref = clf.predict_proba(xho["wearable"].astype(np.float32))[:, 1]
    assert np.max(np.abs(p - ref)) < 1e-6, "wearable"
    assert np.array_equal(p.astype(np.float32),
                          clf.get_booster().predict(
                              xgb.DMatrix(xho["wearable"].astype(np.float32)))
                          ), "wearable: the saved file predicts differently"
    p_ho["wearable"] = p

    for m in MODALITIES:
        auc[m] = roc_auc_score(yho, p_ho[m])
        skill[m] = prior_loss - log_loss(yho, p_ho[m], labels=[0, 1])

    top = max(skill.values())
    weights = {m: round(skill[m] / top, 2) for m in MODALITIES}
    wsum = sum(weights.values())
    fused_ho = sum(weights[m] * p_ho[m] for m in MODALITIES) / wsum
    fused_auc = roc_auc_score(yho, fused_ho)

    v_ev, v_fit = written_values(xev), written_values(xfit)
    lines, present, num, den = draw_records(
        v_ev, yev, np.random.default_rng(s_miss), "p",
        predict_all(models, booster, v_ev), weights,
        np.random.default_rng(s_x_miss))
    fit_lines, _, _, _ = draw_records(
        v_fit, yfit, np.random.default_rng(s_fit_miss), "f",
        predict_all(models, booster, v_fit), weights,
        np.random.default_rng(s_x_fit_miss))
    any_present = den > 0
    eval_auc = roc_auc_score(yev[any_present], num[any_present] / den[any_present])

    for m in LINEAR_MODALITIES:
        write_text(os.path.join(out, "models", m + ".json"),
                   dumps_json(models[m]) + "\n")
    write_text(os.path.join(out, "models", "notes.json"),
               export_dumps(models["notes"]))
    write_text(os.path.join(out, "models", "wearable.json"), wearable_text)
    write_text(os.path.join(out, "data", "patients.jsonl"), "".join(lines))
    write_text(os.path.join(out, "data", "fit.jsonl"), "".join(fit_lines))

    n_present = {m: int(present[m].sum()) for m in MODALITIES}
    all_present = np.logical_and.reduce([present[m] for m in MODALITIES])
    any_mod = np.logical_or.reduce([present[m] for m in MODALITIES])
    n_all = int(np.sum(all_present))
    n_none = int(np.sum(~any_mod))
    pct = lambda k: "%.1f" % (100.0 * k / N_EVAL)  # noqa: E731
    write_text(os.path.join(out, "pipeline.yaml"), PIPELINE_TEMPLATE.format(
        skills=", ".join("%s %.3f" % (m, skill[m]) for m in MODALITIES),
        miss_notes=int(round(100 - 100.0 * n_present["notes"] / N_EVAL)),
        miss_wearable=int(round(100 - 100.0 * n_present["wearable"] / N_EVAL)),
        **{"w_" + m: weights[m] for m in MODALITIES}))

    write_text(os.path.join(out, "README.md"), README_TEMPLATE.format(
        n_eval=N_EVAL, n_fit=N_FIT, prev_pct=int(round(100 * PREVALENCE)),
        xgb_rounds=XGB_ROUNDS, xgb_depth=XGB_DEPTH,
        note_example=next(t for t in v_ev["notes"]
                          if any(c.isupper() for c in t)),
        p_nothing_pct="%.1f" % (100 * P_NOTHING), p_vitals=P_VITALS,
        p_labs0=P_LABS[0], p_labs1=P_LABS[1], p_img0=P_IMAGING[0],
        p_img1=P_IMAGING[1], p_notes=P_NOTES, p_wearable=P_WEARABLE,
        n_all=n_all, n_none=n_none,
        n_train=N_TRAIN, n_heldout=N_HELDOUT,
        model_rows="\n".join("| `%s` | %.3f | %.3f | %s |" % (
            m, auc[m], skill[m], weights[m]) for m in MODALITIES),
        fused_auc="%.3f" % fused_auc, eval_auc="%.3f" % eval_auc,
        **{"pres_" + m: pct(n_present[m]) for m in MODALITIES}))

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
    print("  rows with all five %d, with none %d" % (n_all, n_none))
    return 0


if __name__ == "__main__":
    sys.exit(main())
