"""nlu.classifiers in the Rasa server's environment (run by scripts/test.sh with .venv-rasa): the seeded SVM
intent classifier trains the same model twice on the same data, and a blank message is a fallback."""

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.classifiers import BlankAwareFallbackClassifier, SeededSklearnIntentClassifier

INTENTS = ("greet", "ask_price", "ask_delivery", "complain")


def message(text: str, vector: np.ndarray, intent: str | None = None) -> Message:
    data = {TEXT: text, **({"intent": intent} if intent else {})}
    msg = Message(data=data)
    msg.add_features(Features(vector.reshape(1, -1).astype(np.float32), "sentence", TEXT, "e5"))
    return msg


def training_data(seed: int = 0) -> TrainingData:
    """15 noisy examples around each of four intent centres in 16 dimensions (overlapping, so the calibrated
    probabilities are far from 0 and 1)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(INTENTS), 16))
    examples = [
        message(f"{intent} {i}", centres[k] + rng.normal(scale=1.5, size=16), intent)
        for k, intent in enumerate(INTENTS)
        for i in range(15)
    ]
    return TrainingData(training_examples=examples)


def train(tmp_path, name: str, **config) -> SeededSklearnIntentClassifier:
    (tmp_path / name).mkdir()
    storage = LocalModelStorage(tmp_path / name)
    context = ExecutionContext(GraphSchema({}), "test")
    classifier = SeededSklearnIntentClassifier.create(
        {**SeededSklearnIntentClassifier.get_default_config(), **config}, storage, Resource(name), context
    )
    classifier.train(training_data())
    return classifier


def rankings(classifier: SeededSklearnIntentClassifier) -> list[list[tuple[str, float]]]:
    rng = np.random.default_rng(7)
    probes = [message(f"probe {i}", rng.normal(size=16)) for i in range(10)]
    classifier.process(probes)
    return [[(r["name"], r["confidence"]) for r in p.get("intent_ranking")] for p in probes]


def test_the_same_data_and_seed_train_the_same_svm(tmp_path):
    first, second = rankings(train(tmp_path, "a")), rankings(train(tmp_path, "b"))
    assert first == second
    assert all(0.0 < ranking[0][1] < 1.0 for ranking in first)


def test_the_seed_is_what_makes_it_reproducible(tmp_path):
    # numpy's global state moves between the two trainings: without a fixed seed, Platt scaling's internal
    # cross-validation shuffles differently and the confidences differ
    unseeded = [rankings(train(tmp_path, f"u{i}", random_seed=None)) for i in range(2)]
    assert unseeded[0] != unseeded[1]


def fallback_classifier(tmp_path) -> BlankAwareFallbackClassifier:
    """config.yml's fallback classifier (threshold 0.3); it stores nothing, so the model storage stays empty."""
    return BlankAwareFallbackClassifier.create(
        {**BlankAwareFallbackClassifier.get_default_config(), "threshold": 0.3},
        LocalModelStorage(tmp_path),
        Resource("fallback"),
        ExecutionContext(GraphSchema({}), "test"),
    )


def classified(text: str, ranking: list[tuple[str, float]]) -> Message:
    """A message as the intent classifier leaves it: ``intent`` is the first of ``ranking``."""
    msg = message(text, np.ones(16) if text.strip() else np.zeros(16))
    msg.set("intent", {"name": ranking[0][0], "confidence": ranking[0][1]})
    msg.set("intent_ranking", [{"name": name, "confidence": c} for name, c in ranking])
    return msg


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_a_blank_message_is_a_fallback(tmp_path, text):
    (out,) = fallback_classifier(tmp_path).process([classified(text, [("affirm", 0.9)])])
    assert out.get("intent")["name"] == "nlu_fallback"


def test_a_confident_message_is_not_a_fallback(tmp_path):
    (out,) = fallback_classifier(tmp_path).process([classified("yes please", [("affirm", 0.9), ("deny", 0.05)])])
    assert out.get("intent")["name"] == "affirm"
