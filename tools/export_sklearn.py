#!/usr/bin/python3
"""Exports a fitted scikit-learn model to a latefuse model file.

  tools/export_sklearn.py MODEL.pkl|MODEL.joblib OUT.json

Supported models:
  LogisticRegression, or Pipeline([StandardScaler,] LogisticRegression)
      -> latefuse.linear/v1   (the `linear` plugin)
  Pipeline(TfidfVectorizer, LogisticRegression)
      -> latefuse.tfidf/v1    (the `tfidf_linear` plugin; format in
                               plugins/models/tfidf_linear/README.md)

Anything the plugins would not reproduce exactly is refused with a message
naming the setting (a custom tokenizer, strip_accents, binary=True, one-vs-rest
multiclass, ...). The pickle is loaded with joblib when it is installed, else
with pickle: only load files you trust.

Importable: export_linear(model) -> dict, export_tfidf(pipeline) -> dict,
export(model) -> dict (either, by the model's shape), dumps(dict) -> str.
"""
import json
import sys

LINEAR_FORMAT = "latefuse.linear/v1"
TFIDF_FORMAT = "latefuse.tfidf/v1"
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


class ExportError(Exception):
    """The model cannot be exported faithfully; the message says why."""


def _floats(values):
    import numpy as np
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _steps(model):
    """The estimators of a Pipeline (without passthrough steps), or [model]."""
    from sklearn.pipeline import Pipeline
    if isinstance(model, Pipeline):
        return [s for _, s in model.steps if s is not None and s != "passthrough"]
    return [model]


def _check_logistic(clf):
    from sklearn.linear_model import LogisticRegression
    if type(clf) is not LogisticRegression:
        raise ExportError("last step: expected a LogisticRegression, got %s"
                          % type(clf).__name__)
    if not hasattr(clf, "coef_"):
        raise ExportError("LogisticRegression: not fitted")
    classes = list(clf.classes_)
    if len(classes) < 2:
        raise ExportError("LogisticRegression: needs at least 2 classes")
    if len(classes) > 2:
        # The same rule as LogisticRegression.predict_proba (scikit-learn 1.2).
        ovr = clf.multi_class in ("ovr", "warn") or (
            clf.multi_class == "auto" and clf.solver == "liblinear")
        if ovr:
            raise ExportError(
                "LogisticRegression: multiclass one-vs-rest (multi_class=%r, "
                "solver=%r) is not supported; latefuse files use the "
                "multinomial softmax (multi_class='multinomial')"
                % (clf.multi_class, clf.solver))
    labels = [str(c) for c in classes]
    if len(set(labels)) != len(labels):
        raise ExportError("LogisticRegression: class labels %r are not distinct "
                          "as strings" % classes)
    return {
        "classes": labels,
        "coef": [_floats(row) for row in clf.coef_],
        "intercept": _floats(clf.intercept_),
    }


def export_linear(model):
    """latefuse.linear/v1 dict from a fitted LogisticRegression or
    Pipeline([StandardScaler,] LogisticRegression)."""
    from sklearn.preprocessing import StandardScaler
    steps = _steps(model)
    scaler = None
    if len(steps) == 2:
        scaler = steps[0]
        if type(scaler) is not StandardScaler:
            raise ExportError("first step: expected a StandardScaler, got %s"
                              % type(scaler).__name__)
    elif len(steps) != 1:
        raise ExportError("expected LogisticRegression or Pipeline(StandardScaler, "
                          "LogisticRegression), got %d steps" % len(steps))
    lr = _check_logistic(steps[-1])
    out = {"format": LINEAR_FORMAT, "classes": lr["classes"], "coef": lr["coef"],
           "intercept": lr["intercept"]}
    if scaler is not None:
        n = len(lr["coef"][0])
        mean = _floats(scaler.mean_) if scaler.with_mean else [0.0] * n
        scale = _floats(scaler.scale_) if scaler.with_std else [1.0] * n
        out["scaler"] = {"mean": mean, "scale": scale}
    return out


def _check_vectorizer(vec):
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    if type(vec) is not TfidfVectorizer:
        raise ExportError("first step: expected a TfidfVectorizer, got %s"
                          % type(vec).__name__)
    if not hasattr(vec, "vocabulary_"):
        raise ExportError("TfidfVectorizer: not fitted")
    refusals = [
        (vec.analyzer != "word", "analyzer=%r (only 'word')" % (vec.analyzer,)),
        (vec.tokenizer is not None, "a custom tokenizer"),
        (vec.preprocessor is not None, "a custom preprocessor"),
        (vec.strip_accents is not None, "strip_accents=%r (only None)"
         % (vec.strip_accents,)),
        (vec.stop_words is not None, "stop_words (only None)"),
        (vec.token_pattern not in (DEFAULT_TOKEN_PATTERN, r"\b\w\w+\b"),
         "token_pattern=%r (only scikit-learn's default %r)"
         % (vec.token_pattern, DEFAULT_TOKEN_PATTERN)),
        (vec.binary, "binary=True"),
        (vec.input != "content", "input=%r (only 'content')" % (vec.input,)),
        (np.dtype(vec.dtype) != np.float64, "dtype=%s (only float64)"
         % np.dtype(vec.dtype).name),
        (vec.norm not in ("l1", "l2", None), "norm=%r" % (vec.norm,)),
    ]
    for refused, what in refusals:
        if refused:
            raise ExportError("TfidfVectorizer: %s is not supported" % what)
    min_n, max_n = vec.ngram_range
    vocabulary = {str(term): int(col) for term, col in
                  sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])}
    return {
        "lowercase": bool(vec.lowercase),
        "token_pattern": DEFAULT_TOKEN_PATTERN,
        "ngram_range": [int(min_n), int(max_n)],
        "vocabulary": vocabulary,
        "idf": _floats(vec.idf_) if vec.use_idf else None,
        "use_idf": bool(vec.use_idf),
        "sublinear_tf": bool(vec.sublinear_tf),
        "norm": vec.norm,
    }


def export_tfidf(pipeline):
    """latefuse.tfidf/v1 dict from a fitted Pipeline(TfidfVectorizer,
    LogisticRegression)."""
    steps = _steps(pipeline)
    if len(steps) != 2:
        raise ExportError("expected Pipeline(TfidfVectorizer, LogisticRegression), "
                          "got %d steps" % len(steps))
    vec = _check_vectorizer(steps[0])
    lr = _check_logistic(steps[1])
    if len(lr["coef"][0]) != len(vec["vocabulary"]):
        raise ExportError("LogisticRegression has %d features but the vocabulary "
                          "%d terms" % (len(lr["coef"][0]), len(vec["vocabulary"])))
    out = {"format": TFIDF_FORMAT, "classes": lr["classes"]}
    out.update(vec)
    out["coef"] = lr["coef"]
    out["intercept"] = lr["intercept"]
    return out


def export(model):
    """Either format, chosen by the model's first step."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    steps = _steps(model)
    if steps and isinstance(steps[0], TfidfVectorizer):
        return export_tfidf(model)
    return export_linear(model)


def dumps(model_dict):
    """The JSON text of an exported model: compact rows, floats as repr (exact
    round trip), non-ASCII terms kept as UTF-8."""
    return json.dumps(model_dict, ensure_ascii=False, separators=(",", ":")) + "\n"


def load(path):
    try:
        import joblib
    except ImportError:
        import pickle
        with open(path, "rb") as f:
            return pickle.load(f)
    return joblib.load(path)


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        return 2
    try:
        model = load(argv[1])
    except Exception as e:  # noqa: BLE001 - any load failure is reported
        sys.stderr.write("export_sklearn: cannot load '%s': %s\n" % (argv[1], e))
        return 1
    try:
        text = dumps(export(model))
    except ExportError as e:
        sys.stderr.write("export_sklearn: '%s': %s\n" % (argv[1], e))
        return 1
    with open(argv[2], "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
