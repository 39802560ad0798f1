#!/usr/bin/python3
"""Checks that an XGBoost model file loads and says what a latefuse pipeline needs.

Usage: tools/check_xgboost_model.py MODEL.json|MODEL.ubj [--classes a,b,c]
                                    [--name MODALITY]

Loads the model with the xgboost Python package (Debian's python3-xgboost, the
same libxgboost the `xgboost` plugin links), prints its objective, number of
classes and number of features, and a YAML snippet for the pipeline. The
pipeline's classes are the model's classes in index order (class i = label i
the model was trained on); --classes names them (their count must match), else
the snippet uses placeholders.

Exit code 0 when the `xgboost` plugin can run the model; 1 with a message on
stderr when it cannot (unsupported objective, wrong --classes count, a file
that does not load); 2 for usage errors.
"""

import argparse
import json
import os
import sys

SUPPORTED = ("binary:logistic", "multi:softprob")


def fail(message):
    print("check_xgboost_model: " + message, file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="XGBoost model file (.json or .ubj)")
    ap.add_argument("--classes", help="the class labels, in index order, comma-separated")
    ap.add_argument("--name", default="MODALITY", help="modality name for the snippet")
    args = ap.parse_args()

    try:
        import xgboost as xgb
    except ImportError:
        return fail("the xgboost Python package is missing (apt-get install python3-xgboost)")
    if not os.path.isfile(args.model):
        return fail("cannot open model file '%s'" % args.model)
    try:
        booster = xgb.Booster(model_file=args.model)
    except xgb.core.XGBoostError as e:
        return fail("model file '%s': not an XGBoost model (JSON or UBJSON): %s"
                    % (args.model, str(e).splitlines()[0]))
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    num_class = int(config["learner"]["learner_model_param"]["num_class"])
    features = booster.num_features()
    rounds = booster.num_boosted_rounds()

    print("model:      %s" % args.model)
    print("xgboost:    %s" % xgb.__version__)
    print("objective:  %s" % objective)
    print("rounds:     %d" % rounds)
    print("features:   %d" % features)
    if objective == "multi:softmax":
        return fail("objective multi:softmax predicts class indices, not probabilities: "
                    "use multi:softprob (the same trees: booster.set_param("
                    "{'objective': 'multi:softprob'}) then booster.save_model(...))")
    if objective not in SUPPORTED:
        return fail("unsupported objective '%s' (the xgboost plugin takes %s)"
                    % (objective, " or ".join(SUPPORTED)))
    classes = 2 if objective == "binary:logistic" else num_class
    print("classes:    %d" % classes)
    if args.classes is not None:
        labels = [c.strip() for c in args.classes.split(",")]
        if len(labels) != classes or any(not c for c in labels):
            return fail("--classes names %d classes, but the model has %d"
                        % (len(labels), classes))
    else:
        labels = ["class_%d" % i for i in range(classes)]

    print()
    print("# the pipeline (classes in the model's index order: class i = label i)")
    print("classes: [%s]" % ", ".join(json.dumps(c) for c in labels))
    print("modalities:")
    print("  - name: %s" % args.name)
    print("    input: {kind: dense, size: %d}" % features)
    print("    model:")
    print("      plugin: xgboost")
    print("      params: {model: %s, nthread: 1}" % json.dumps(args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
