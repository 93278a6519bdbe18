"""nlu.classifiers in the Rasa server's environment (run by scripts/test.sh with .venv-rasa): the seeded SVM
intent classifier trains the same model twice on the same data and reads the sparse features beside the dense
vector, and a blank message is a fallback."""

import numpy as np
import pytest
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

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


def with_words(intent_index: int, rng: np.random.Generator, intent: str | None = None) -> Message:
    """A message whose dense vector is noise of unit length (as e5's) that says nothing of the intent, and whose
    sparse sentence features (counts over an 8-word vocabulary) hold its intent's two words and a random one."""
    noise = rng.normal(size=16)
    msg = message(f"words {intent_index}", noise / np.linalg.norm(noise), intent)
    counts = np.zeros((1, 8))
    counts[0, [2 * intent_index, 2 * intent_index + 1]] = 1
    counts[0, rng.integers(0, 8)] += 1
    msg.add_features(Features(scipy.sparse.coo_matrix(counts), "sentence", TEXT, "counts"))
    return msg


@pytest.mark.parametrize("sparse_weight", [0.5, 0.0])
def test_the_sparse_features_are_read_beside_the_dense_vector(tmp_path, sparse_weight):
    rng = np.random.default_rng(3)
    data = TrainingData([with_words(k, rng, intent) for k, intent in enumerate(INTENTS) for _ in range(15)])
    (tmp_path / "s").mkdir()
    classifier = SeededSklearnIntentClassifier.create(
        {**SeededSklearnIntentClassifier.get_default_config(), "C": [20], "sparse_weight": sparse_weight},
        LocalModelStorage(tmp_path / "s"),
        Resource("s"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    classifier.train(data)
    assert isinstance(classifier.clf, SVC)  # a grid of one point: no search
    # as the Rasa server has it: loaded from the model storage (skops; sparse support vectors trusted)
    loaded = SeededSklearnIntentClassifier.load(
        classifier.component_config,
        LocalModelStorage(tmp_path / "s"),
        Resource("s"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    assert isinstance(loaded.clf, SVC)
    probes = [(intent, with_words(k, rng)) for k, intent in enumerate(INTENTS) for _ in range(5)]
    loaded.process([probe for _, probe in probes])
    right = sum(probe.get("intent")["name"] == intent for intent, probe in probes) / len(probes)
    # a message no sparse featurizer found a token in ("👍", an empty text): its dense vector and zeros
    [thumbs_up] = loaded.process([message("👍", np.ones(16) / 4)])
    assert thumbs_up.get("intent")["name"] in INTENTS
    if sparse_weight:
        assert right >= 0.8
    else:  # the dense noise alone: about chance (0.25)
        assert right <= 0.5


def test_a_grid_of_several_points_is_searched(tmp_path):
    assert isinstance(train(tmp_path, "g", C=[1, 20]).clf, GridSearchCV)


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


def test_the_probabilities_are_libsvm_s_from_the_primal_weights(tmp_path):
    rng = np.random.default_rng(5)
    data = TrainingData([with_words(k, rng, intent) for k, intent in enumerate(INTENTS) for _ in range(15)])
    (tmp_path / "p").mkdir()
    classifier = SeededSklearnIntentClassifier.create(
        {**SeededSklearnIntentClassifier.get_default_config(), "C": [20]},
        LocalModelStorage(tmp_path / "p"),
        Resource("p"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    classifier.train(data)
    rows = scipy.sparse.vstack(
        [classifier._get_sentence_features(with_words(k % len(INTENTS), rng)) for k in range(40)], format="csr"
    )
    ours, libsvm = classifier.predict_prob(rows), classifier.clf.predict_proba(rows)
    assert ours.shape == libsvm.shape == (40, len(INTENTS))
    np.testing.assert_allclose(ours.sum(axis=1), 1.0)
    assert np.abs(ours - libsvm).max() < 2e-3  # libsvm iterates to a tolerance; ours is the exact optimum
    assert (ours.argmax(axis=1) == libsvm.argmax(axis=1)).all()
    assert ours.max(axis=1).min() > 0.05 and ours.max() < 1.0  # not saturated: the comparison means something
