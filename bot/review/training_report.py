"""The last ``rasa test`` results, read from ``settings.rasa_results_dir`` (``results/``) for the
manager console's training page.

Rasa writes them in two places here: ``rasa test`` / ``rasa test nlu`` / ``rasa test core`` without
``--out`` write into ``results/`` itself; ``scripts/nlu_heldout.sh`` (``make nlu-eval``) writes the NLU
results into ``results/nlu-heldout/`` and ``make test-stories`` / ``scripts/test.sh`` the story results
into ``results/core/``. For each of NLU and stories the more recently written location is read. A
missing or unreadable file is named in :attr:`TrainingReport.problems`, never raised.
"""

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.core.settings import get_settings

NLU_DIRS = (".", "nlu-heldout")
CORE_DIRS = (".", "core")
_AVERAGES = ("macro avg", "weighted avg", "micro avg")


@dataclass(frozen=True)
class ResultFile:
    """A result file and when it was last written (UTC)."""

    path: Path
    modified_at: datetime


@dataclass(frozen=True)
class Score:
    """Precision, recall and F1 (0…1) of one intent or action over ``support`` test examples;
    ``confused_with``: intent → how many of its examples were predicted as that intent."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int
    confused_with: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IntentError:
    """A test example whose intent was predicted wrong: the labelled ``intent``, the ``predicted`` one
    and its confidence (0…1)."""

    text: str
    intent: str
    predicted: str | None
    confidence: float | None


@dataclass(frozen=True)
class NluResults:
    """Intent classification results (``rasa test nlu``). ``intents`` sorted by name; ``accuracy`` and
    the averages over all test examples; ``errors`` empty when ``errors_file`` is None."""

    directory: Path
    report: ResultFile
    intents: list[Score]
    accuracy: float | None
    macro_avg: Score | None
    weighted_avg: Score | None
    confusion_matrix: ResultFile | None
    errors_file: ResultFile | None
    errors: list[IntentError]


@dataclass(frozen=True)
class CoreResults:
    """Test story results (``rasa test core``). ``actions``: per-action scores sorted by name;
    ``conversations_correct``/``conversations_total``: test stories without a wrong prediction;
    ``failed_stories``: names of the failed stories, ``failed_stories_yaml`` the file as Rasa wrote it
    (each wrong step annotated ``# predicted: …``)."""

    directory: Path
    story_report: ResultFile | None
    actions: list[Score]
    accuracy: float | None
    conversations_correct: int | None
    conversations_total: int | None
    failed_stories_file: ResultFile | None
    failed_stories: list[str]
    failed_stories_yaml: str


@dataclass(frozen=True)
class TrainingReport:
    """What the last test runs left in ``results_dir``; ``nlu``/``core`` None when their results are
    missing; ``problems`` says, one sentence each, which files are missing or unreadable."""

    results_dir: Path
    nlu: NluResults | None
    core: CoreResults | None
    problems: list[str]


def _file(path: Path) -> ResultFile | None:
    try:
        return ResultFile(path, datetime.fromtimestamp(path.stat().st_mtime, UTC))
    except OSError:
        return None


def _newest(results_dir: Path, subdirs: tuple[str, ...], names: tuple[str, ...]) -> Path | None:
    """Of ``results_dir``/``subdir`` holding any of ``names``, the one most recently written to."""
    found = [
        (f.modified_at, (results_dir / sub).resolve())
        for sub in subdirs
        for name in names
        if (f := _file(results_dir / sub / name))
    ]
    return max(found)[1] if found else None


def _score(name: str, raw: dict[str, Any]) -> Score:
    return Score(
        name,
        float(raw["precision"]),
        float(raw["recall"]),
        float(raw["f1-score"]),
        int(raw["support"]),
        {str(k): int(v) for k, v in (raw.get("confused_with") or {}).items()},
    )


def _scores(report: dict[str, Any]) -> list[Score]:
    return sorted(
        (
            _score(name, raw)
            for name, raw in report.items()
            if isinstance(raw, dict) and "support" in raw and name not in _AVERAGES
        ),
        key=lambda s: s.name,
    )


class _Reader:
    """Reads result files, noting each one missing or unreadable in ``problems``."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = results_dir
        self.problems: list[str] = []

    def name(self, path: Path) -> str:
        try:
            return str(Path(self.results_dir.name) / path.relative_to(self.results_dir.resolve()))
        except ValueError:
            return str(path)

    def present(self, path: Path) -> ResultFile | None:
        found = _file(path)
        if found is None:
            self.problems.append(f"{self.name(path)} is missing")
        return found

    def load(self, path: Path, parse: Any) -> tuple[ResultFile | None, Any]:
        """(file, parse(text)) or (file or None, None) with the problem noted."""
        found = self.present(path)
        if found is None:
            return None, None
        try:
            return found, parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            self.problems.append(f"{self.name(path)} cannot be read: {exc}")
            return found, None

    def nlu(self) -> NluResults | None:
        directory = _newest(self.results_dir, NLU_DIRS, ("intent_report.json",))
        if directory is None:
            self.problems.append(
                f"no NLU test results: intent_report.json is in neither {self.results_dir.name}/ nor "
                f"{self.results_dir.name}/nlu-heldout/ (run `make nlu-eval` or `rasa test nlu`)"
            )
            return None
        report_file, report = self.load(directory / "intent_report.json", json.loads)
        if report_file is None or report is None:  # a parsed report has its file
            return None
        try:
            intents = _scores(report)
            averages = {name: _score(name, report[name]) for name in _AVERAGES[:2] if name in report}
            accuracy = float(report["accuracy"]) if "accuracy" in report else None
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            self.problems.append(f"{self.name(directory / 'intent_report.json')} is not a Rasa intent report: {exc!r}")
            return None
        errors_file, raw_errors = self.load(directory / "intent_errors.json", json.loads)
        try:
            errors = [
                IntentError(
                    str(e["text"]),
                    str(e["intent"]),
                    (e.get("intent_prediction") or {}).get("name"),
                    (e.get("intent_prediction") or {}).get("confidence"),
                )
                for e in raw_errors or ()
            ]
        except (TypeError, KeyError, AttributeError) as exc:
            self.problems.append(f"{self.name(directory / 'intent_errors.json')} is not a Rasa error list: {exc!r}")
            errors = []
        matrix = self.present(directory / "intent_confusion_matrix.png")
        return NluResults(
            directory,
            report_file,
            intents,
            accuracy,
            averages.get("macro avg"),
            averages.get("weighted avg"),
            matrix,
            errors_file,
            errors,
        )

    def core(self) -> CoreResults | None:
        directory = _newest(self.results_dir, CORE_DIRS, ("story_report.json", "failed_test_stories.yml"))
        if directory is None:
            self.problems.append(
                f"no test story results: story_report.json is in neither {self.results_dir.name}/ nor "
                f"{self.results_dir.name}/core/ (run `make test-stories` or `rasa test core`)"
            )
            return None
        report_file, report = self.load(directory / "story_report.json", json.loads)
        try:
            actions = _scores(report or {})
            accuracy = float(report["accuracy"]) if report and "accuracy" in report else None
            conversations = (report or {}).get("conversation_accuracy") or {}
            correct, total = conversations.get("correct"), conversations.get("total")
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            self.problems.append(f"{self.name(directory / 'story_report.json')} is not a Rasa story report: {exc!r}")
            actions, accuracy, correct, total = [], None, None, None
        failed_file, failed_yaml = self.load(directory / "failed_test_stories.yml", lambda text: text)
        try:
            stories = (yaml.safe_load(failed_yaml or "") or {}).get("stories") or []
            failed = [str(story.get("story")) for story in stories]
        except (yaml.YAMLError, AttributeError) as exc:
            self.problems.append(f"{self.name(directory / 'failed_test_stories.yml')} cannot be read: {exc}")
            failed = []
        return CoreResults(
            directory, report_file, actions, accuracy, correct, total, failed_file, failed, failed_yaml or ""
        )


def load_report(results_dir: Path) -> TrainingReport:
    """The training report of the ``rasa test`` results under ``results_dir`` (blocking file reads;
    from the event loop use :func:`read_report`). Never raises for missing or malformed files."""
    reader = _Reader(results_dir)
    nlu, core = reader.nlu(), reader.core()
    return TrainingReport(results_dir, nlu, core, reader.problems)


async def read_report(results_dir: Path | None = None) -> TrainingReport:
    """:func:`load_report` of ``results_dir`` (default ``settings.rasa_results_dir``), run in a thread."""
    return await asyncio.to_thread(load_report, results_dir or get_settings().rasa_results_dir)
