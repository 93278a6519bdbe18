#!/usr/bin/env bash
# NLU quality on data it was not trained on: split data/nlu 80/20 (fixed seed), train an NLU-only model on the 80%
# with config.yml's pipeline, test on the 20%, print intent F1 per intent and the entity F1 of the CRF (or DIET),
# and fail below the floors (issue 14's targets): intent F1 macro ≥ MIN_MACRO_F1 (0.90), every intent ≥ MIN_INTENT_F1 (0.75), and
# entity F1 ≥ MIN_ENTITY_F1 (0.85) for each of ENTITIES (budget, quantity, category). Report in results/nlu-heldout/.
# CONFIG=other.yml measures another pipeline on the same split; the NLU training time is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=var/nlu-heldout
rm -rf "$out" results/nlu-heldout
mkdir -p "$out"
quiet() { "$@" >>"$out/rasa.log" 2>&1 || { tail -n 40 "$out/rasa.log" >&2; exit 1; }; }
quiet .venv-rasa/bin/rasa data split nlu --nlu data/nlu --training-fraction 0.8 --random-seed 42 --out "$out"
started=$(date +%s)
quiet .venv-rasa/bin/rasa train nlu --config "${CONFIG:-config.yml}" --nlu "$out/training_data.yml" --out "$out/models" \
  --fixed-model-name nlu-heldout
echo "NLU trained on the 80% split with ${CONFIG:-config.yml} in $(($(date +%s) - started)) s"
quiet .venv-rasa/bin/rasa test nlu --nlu "$out/test_data.yml" --model "$out/models/nlu-heldout.tar.gz" --out results/nlu-heldout --successes
.venv/bin/python - "${MIN_MACRO_F1:-0.90}" "${MIN_INTENT_F1:-0.75}" "${MIN_ENTITY_F1:-0.85}" "${ENTITIES:-budget quantity category}" "${MIN_LANGUAGE_F1:-0.85}" <<'PY'
import json, os, sys
from bot.contracts.languages import dominant_script, language_script
from bot.core.business import get_company
min_macro, min_intent, min_entity = map(float, sys.argv[1:4])
checked_entities = sys.argv[4].split()
min_language = float(sys.argv[5])
report = json.load(open("results/nlu-heldout/intent_report.json"))
averages = ("macro avg", "weighted avg", "micro avg")
rows = sorted((k, v) for k, v in report.items() if isinstance(v, dict) and "support" in v and k not in averages)
print(f"{'intent':<24}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
for name, v in rows:
    flag = "  < floor" if v["f1-score"] < min_intent else ""
    print(f"{name:<24}{v['precision']:>10.3f}{v['recall']:>8.3f}{v['f1-score']:>8.3f}{v['support']:>9}{flag}")
macro, weighted = report["macro avg"]["f1-score"], report["weighted avg"]["f1-score"]
# the entity report of the extractor that learned the entities (DIET, or CRF in a pipeline without DIET)
[learned] = [name for name in ("DIETClassifier", "CRFEntityExtractor")
             if os.path.exists(f"results/nlu-heldout/{name}_report.json")][:1]
entities = json.load(open(f"results/nlu-heldout/{learned}_report.json"))
entity_f1 = {k: v["f1-score"] for k, v in entities.items() if isinstance(v, dict) and "support" in v and "avg" not in k}
print(f"entity F1 ({learned}): " + ", ".join(f"{k} {f1:.3f}" for k, f1 in sorted(entity_f1.items())))
print(f"held-out intent F1: macro {macro:.3f}, weighted {weighted:.3f}, accuracy {report['accuracy']:.3f}")
failures = [f"intent F1 macro {macro:.3f} < {min_macro}"] if macro < min_macro else []
failures += [f"intent {name} F1 {v['f1-score']:.3f} < {min_intent}" for name, v in rows if v["f1-score"] < min_intent]
failures += [f"entity {name} F1 {entity_f1.get(name, 0.0):.3f} < {min_entity}" for name in checked_entities
             if entity_f1.get(name, 0.0) < min_entity]
company = get_company()
by_script = {language_script(language): language for language in company.languages}
predictions = [*json.load(open("results/nlu-heldout/intent_successes.json")),
               *json.load(open("results/nlu-heldout/intent_errors.json"))]
for language in company.languages:
    pairs = [(p["intent"], (p.get("intent_prediction") or {}).get("name")) for p in predictions
             if by_script.get(dominant_script(p["text"]) or "", company.default_language) == language]
    f1s = []
    for intent in sorted({expected for expected, _ in pairs}):
        tp = sum(1 for e, g in pairs if e == intent and g == intent)
        fp = sum(1 for e, g in pairs if e != intent and g == intent)
        fn = sum(1 for e, g in pairs if e == intent and g != intent)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    language_macro = sum(f1s) / len(f1s) if f1s else 0.0
    accuracy = sum(1 for e, g in pairs if e == g) / len(pairs) if pairs else 0.0
    print(f"language {language}: {len(pairs)} test messages, intent F1 macro {language_macro:.3f}, accuracy {accuracy:.3f}")
    if language_macro < min_language:
        failures.append(f"language {language} intent F1 macro {language_macro:.3f} < {min_language}")
print(f"floors: macro {min_macro}, each intent {min_intent}, entities {'/'.join(checked_entities)} {min_entity}, "
      f"each language {min_language}")
for failure in failures:
    print(f"FAIL: {failure}")
sys.exit(1 if failures else 0)
PY
