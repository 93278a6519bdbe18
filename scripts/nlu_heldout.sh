#!/usr/bin/env bash
# NLU quality on data it was not trained on: split data/nlu 80/20 (fixed seed), train an NLU-only
# model on the 80%, test on the 20%, print intent F1, and fail below the floor (MIN_F1, default 0.72; measured 0.76–0.77).
set -euo pipefail
cd "$(dirname "$0")/.."
out=var/nlu-heldout
rm -rf "$out" results/nlu-heldout
mkdir -p "$out"
quiet() { "$@" >>"$out/rasa.log" 2>&1 || { tail -n 40 "$out/rasa.log" >&2; exit 1; }; }
quiet .venv-rasa/bin/rasa data split nlu --nlu data/nlu --training-fraction 0.8 --random-seed 42 --out "$out"
quiet .venv-rasa/bin/rasa train nlu --nlu "$out/training_data.yml" --out "$out/models" --fixed-model-name nlu-heldout
quiet .venv-rasa/bin/rasa test nlu --nlu "$out/test_data.yml" --model "$out/models/nlu-heldout.tar.gz" --out results/nlu-heldout
.venv/bin/python - "${MIN_F1:-0.72}" <<'PY'
import json, sys
report = json.load(open("results/nlu-heldout/intent_report.json"))
floor = float(sys.argv[1])
rows = sorted((k, v) for k, v in report.items() if isinstance(v, dict) and "support" in v and k not in ("macro avg", "weighted avg", "micro avg"))
print(f"{'intent':<24}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
for name, v in rows:
    print(f"{name:<24}{v['precision']:>10.3f}{v['recall']:>8.3f}{v['f1-score']:>8.3f}{v['support']:>9}")
macro, weighted = report["macro avg"]["f1-score"], report["weighted avg"]["f1-score"]
entities = json.load(open("results/nlu-heldout/DIETClassifier_report.json"))
print("entity F1 (DIET): " + ", ".join(f"{k} {v['f1-score']:.2f}" for k, v in sorted(entities.items()) if isinstance(v, dict) and "support" in v and "avg" not in k))
print(f"held-out intent F1: macro {macro:.3f}, weighted {weighted:.3f}, accuracy {report['accuracy']:.3f} (floor {floor})")
sys.exit(0 if weighted >= floor else 1)
PY
