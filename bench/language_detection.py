"""Language detection on short chat messages: Closer's rule (bot.contracts.languages.detect, lingua behind it)
against the libraries alone, on the labelled messages in tests/data/language_detection/*.yml.

Each message is labelled with its language (en, ar, ru) or with what it is when no library can name a served
language: ``arabizi`` (Arabic in Latin letters) and ``translit`` (Russian in Latin letters). Per label, the share
a detector names as that language ("right"), leaves undecided ("kept": the conversation keeps its language) and
names as another served language ("wrong": the customer would be answered in a language they did not write in).
For arabizi and translit, "wrong" is English. Latency is per message, models loaded. Run: ``make bench-language``.
"""

import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bot.contracts.languages import detect

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "language_detection"
SERVED = ("en", "ar", "ru")


def load_messages() -> list[tuple[str, str]]:
    """(text, label) of every labelled message."""
    messages = []
    for path in sorted(DATA.glob("*.yml")):
        messages += [(item["text"], item["language"]) for item in yaml.safe_load(path.read_text(encoding="utf-8"))]
    return messages


def detectors() -> dict[str, Callable[[str], str | None]]:
    """Name → text → a served language or None."""
    import py3langid
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    def lingua(builder) -> Callable[[str], str | None]:
        detector = builder.build()

        def run(text: str) -> str | None:
            found = detector.detect_language_of(text)
            code = found.iso_code_639_1.name.lower() if found else None
            return code if code in SERVED else None

        return run

    served = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in SERVED]
    restricted = py3langid.langid.LanguageIdentifier.from_pickled_model(py3langid.langid.MODEL_FILE, norm_probs=True)
    restricted.set_languages(list(SERVED))

    def langid_all(text: str) -> str | None:
        code = py3langid.classify(text)[0]
        return code if code in SERVED else None

    return {
        "Closer (rule + lingua)": lambda text: detect(text, SERVED),
        "lingua, served only": lingua(LanguageDetectorBuilder.from_languages(*served)),
        "lingua, all 75": lingua(LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models()),
        "py3langid, served only": lambda text: restricted.classify(text)[0],
        "py3langid, all 97": langid_all,
    }


def main() -> int:
    messages = load_messages()
    labels = sorted({label for _, label in messages}, key=lambda label: (label not in SERVED, label))
    print(
        f"{len(messages)} labelled messages ({DATA.relative_to(ROOT)}): "
        + ", ".join(f"{label} {sum(1 for _, m in messages if m == label)}" for label in labels)
    )
    print(f"\n{'detector':<26}{'label':<10}{'right':>8}{'kept':>8}{'wrong':>8}{'µs/msg':>9}")
    baseline_wrong = None
    for name, run in detectors().items():
        run("warm up")
        started = time.perf_counter()
        results = [(run(text), label) for text, label in messages]
        per_message = (time.perf_counter() - started) / len(messages) * 1e6
        wrong_total = 0
        for label in labels:
            got = [found for found, expected in results if expected == label]
            target = label if label in SERVED else None
            right = sum(1 for found in got if found == target and target)
            kept = sum(1 for found in got if found is None)
            wrong = len(got) - right - kept
            wrong_total += wrong
            print(
                f"{name:<26}{label:<10}{right / len(got):>8.2f}{kept / len(got):>8.2f}{wrong / len(got):>8.2f}"
                f"{per_message:>9.0f}"
            )
        baseline_wrong = wrong_total if baseline_wrong is None else baseline_wrong
        print(f"{'':<26}{'all':<10} wrong switches {wrong_total} (Closer's: {baseline_wrong})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
