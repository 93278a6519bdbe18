"""The training report over real `rasa test` output (tests/data/rasa_results: a held-out NLU run of
scripts/nlu_heldout.sh and a `rasa test core` run with one failing story), copied into temp dirs."""

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core import caches
from bot.review.training_report import load_report, read_report

REAL = Path(__file__).parents[1] / "data" / "rasa_results"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """results/ as `make nlu-eval` and `make test-stories` leave it (plus a confusion matrix image)."""
    path = tmp_path / "results"
    shutil.copytree(REAL, path)
    (path / "nlu-heldout" / "intent_confusion_matrix.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return path


def touch(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def test_report_of_held_out_nlu_and_test_stories(results):
    raw = json.loads((results / "nlu-heldout" / "intent_report.json").read_text())
    raw_errors = json.loads((results / "nlu-heldout" / "intent_errors.json").read_text())
    written = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    touch(results / "nlu-heldout" / "intent_report.json", written)

    report = load_report(results)

    assert report.problems == []
    nlu = report.nlu
    assert nlu.directory == (results / "nlu-heldout").resolve()
    assert nlu.report.modified_at == written
    assert [s.name for s in nlu.intents] == sorted(
        k for k in raw if k not in ("accuracy", "macro avg", "weighted avg", "micro avg")
    )
    worst = min(nlu.intents, key=lambda s: s.f1)
    expected = raw[worst.name]
    assert (worst.precision, worst.recall, worst.f1, worst.support, worst.confused_with) == (
        expected["precision"],
        expected["recall"],
        expected["f1-score"],
        expected["support"],
        expected["confused_with"],
    )
    assert worst.confused_with  # the held-out run confuses its weakest intent with others
    assert (nlu.accuracy, nlu.macro_avg.f1, nlu.weighted_avg.f1) == (
        raw["accuracy"],
        raw["macro avg"]["f1-score"],
        raw["weighted avg"]["f1-score"],
    )
    assert nlu.confusion_matrix.path.name == "intent_confusion_matrix.png"
    assert len(nlu.errors) == len(raw_errors) > 0
    assert (nlu.errors[0].text, nlu.errors[0].intent, nlu.errors[0].predicted, nlu.errors[0].confidence) == (
        raw_errors[0]["text"],
        raw_errors[0]["intent"],
        raw_errors[0]["intent_prediction"]["name"],
        raw_errors[0]["intent_prediction"]["confidence"],
    )

    core = report.core
    assert core.directory == (results / "core").resolve()
    assert (core.conversations_correct, core.conversations_total) == (0, 1)
    assert core.failed_stories == ["chairs objection uncorrected (/tmp/st/test_bad.yml)"]
    assert "# predicted: utter_chitchat" in core.failed_stories_yaml
    assert "action_handle_objection" in {s.name for s in core.actions}


def test_the_more_recent_of_both_locations_is_read(results):
    """Plain `rasa test` writes into results/ itself; the newer run wins, for NLU and stories alike."""
    for name in ("intent_report.json", "intent_errors.json"):
        shutil.copy(results / "nlu-heldout" / name, results / name)
    (results / "failed_test_stories.yml").write_text("# None of the test stories failed - all good!")
    old, new = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    touch(results / "intent_report.json", old)
    touch(results / "nlu-heldout" / "intent_report.json", new)
    touch(results / "failed_test_stories.yml", new)
    for name in ("story_report.json", "failed_test_stories.yml"):
        touch(results / "core" / name, old)

    report = load_report(results)
    assert (report.nlu.directory, report.core.directory) == ((results / "nlu-heldout").resolve(), results.resolve())
    assert (report.core.failed_stories, report.core.story_report) == ([], None)
    assert report.problems == ["results/story_report.json is missing"]

    touch(results / "intent_report.json", new.replace(day=3))
    report = load_report(results)
    assert report.nlu.directory == results.resolve()
    assert "results/intent_confusion_matrix.png is missing" in report.problems


def test_missing_and_unreadable_files_are_reported_not_raised(tmp_path, results):
    report = load_report(tmp_path / "nothing-here")
    assert (report.nlu, report.core) == (None, None)
    assert [p.split(":")[0] for p in report.problems] == ["no NLU test results", "no test story results"]
    assert "make nlu-eval" in report.problems[0] and "make test-stories" in report.problems[1]

    (results / "nlu-heldout" / "intent_report.json").write_text('{"greet": {"precision": 1.0')
    (results / "nlu-heldout" / "intent_errors.json").unlink()
    (results / "core" / "story_report.json").write_text('["not", "a", "report"]')
    report = load_report(results)
    assert report.nlu is None
    assert report.core.actions == [] and report.core.failed_stories
    assert [p.split(":")[0] for p in report.problems] == [
        "results/nlu-heldout/intent_report.json cannot be read",
        "results/core/story_report.json is not a Rasa story report",
    ]


async def test_read_report_defaults_to_the_settings_results_dir(results, monkeypatch):
    monkeypatch.setenv("CLOSER_RASA_RESULTS_DIR", str(results))
    caches.reset()
    try:
        report = await read_report()
    finally:
        caches.reset()
    assert report.results_dir == results and report.nlu is not None and report.core is not None
