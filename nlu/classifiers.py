"""Two of Rasa's classifiers, changed: the SVM intent classifier with a seed and the sparse features beside the
dense ones, and the fallback classifier that treats a blank message as a fallback.

Rasa's SklearnIntentClassifier calibrates the SVM's probabilities (Platt scaling, an internal cross-validation)
with numpy's global random state, so two trainings on the same data give different confidences; with
``random_seed`` (default 42, as DIETClassifier's in config.yml) the same data trains the same model, which keeps
the end-to-end tables and the fallback threshold reproducible.

Rasa's SVM reads only the dense sentence vector (here multilingual-e5-small's). Beside it, the message's sparse
sentence features (the word and character n-gram counts, the regex matches), L2-normalised and weighted by
``sparse_weight``, carry the exact words and spellings e5 blurs, Gulf Arabic and Russian word forms among them:
on the held-out split (`make nlu-eval`, 1,184 test messages, C 20) intent F1 macro 0.895 → 0.914 with weight 0.5
(English 0.922 → 0.942, Arabic 0.850 → 0.878, Russian 0.880 → 0.896); fitted by scikit-learn alone on the same split,
weights 0.3 and 0.7 gave 0.912 and 0.913 against 0.917, and messages wrong above the fallback threshold fell from
7.3 % to 5.6 %. Training on the full data takes 54 s (the grid search over the dense vector alone took 46 s), a
prediction with libsvm ≈ 5 ms instead of 0.3 ms (a dot product with each of ~5,000 sparse support vectors), ≈ 0.8 ms
by :meth:`SeededSklearnIntentClassifier.predict_prob`'s shortcuts. A grid of one point (``C: [20]``) is fitted
directly, without the search's five cross-validation fits.

A message that is empty or only whitespace says nothing, yet the classifiers still rank the intents on the
features of nothing (with the e5 sentence feature, ``affirm`` at 0.53–0.60): a blank message sent to the Rasa
server's REST webhook would answer "yes" to whatever the bot had asked, confirming an erasure among others.
Closer's own channels drop blank messages before Rasa; this keeps Rasa's webhooks and ``rasa shell`` safe.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import rasa.shared.utils.io
import scipy.sparse
import skops.io
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.nlu.classifiers.sklearn_intent_classifier import SklearnIntentClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import FEATURIZERS
from sklearn.preprocessing import LabelEncoder, normalize

log = logging.getLogger(__name__)

# the type of an SVC's support vectors when it was fitted on sparse features, which Rasa's load does not trust
SPARSE_MATRIX_TYPE = f"{scipy.sparse.csr_matrix.__module__}.{scipy.sparse.csr_matrix.__qualname__}"


def couple(pairwise: np.ndarray, classes: int) -> np.ndarray:
    """(classes,) probabilities summing to 1 from ``pairwise``, shape (classes·(classes-1)/2,): P(i | i or j) for the
    pairs i < j in libsvm's order ((0, 1), (0, 2), …, (1, 2), …). Wu, Lin and Weng's second method (2004), as libsvm's
    ``multiclass_probability``, solved exactly: p ∝ Q⁻¹1 with Q[t, t] = Σ_j≠t r[j, t]², Q[t, j] = -r[j, t]·r[t, j]."""
    upper = np.triu_indices(classes, 1)
    r = np.zeros((classes, classes))  # r[i, j]: P(i | i or j)
    r[upper] = pairwise
    r.T[upper] = 1 - pairwise
    q = -r.T * r
    np.fill_diagonal(q, (r**2).sum(axis=0))  # r's diagonal is 0
    p = np.linalg.solve(q, np.ones(classes))
    return p / p.sum()


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class BlankAwareFallbackClassifier(FallbackClassifier):
    """``nlu_fallback`` (at the configured threshold's confidence) for a blank message, as for one whose top
    intent is below ``threshold`` or within ``ambiguity_threshold`` of the second (Rasa's own rules)."""

    def _should_fallback(self, message: Message) -> bool:
        return not (message.get(TEXT) or "").strip() or super()._should_fallback(message)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class SeededSklearnIntentClassifier(SklearnIntentClassifier):
    """Rasa's SklearnIntentClassifier (an SVM, C and kernel chosen by grid search, probabilities by Platt scaling)
    over the message's dense sentence vector and its sparse sentence features weighted by ``sparse_weight``, whose
    SVM draws from ``random_seed`` (see the module docstring)."""

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        clf: Any = None,
        le: LabelEncoder | None = None,
        sparse_layout: list[tuple[str, int]] | None = None,
    ) -> None:
        """Rasa's, and ``sparse_layout``: the sparse sentence features the SVM was trained on, as (featurizer,
        width) pairs in the order of its columns (empty: the dense vector alone)."""
        super().__init__(config, model_storage, resource, clf, le)
        self.sparse_layout = sparse_layout or []
        self._weights: tuple[Any, scipy.sparse.csc_matrix] | None = None  # (classifier, its coef_), see predict_prob

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Rasa's defaults (C grid [1, 2, 5, 10, 20, 100], linear kernel, f1_weighted scoring) plus ``random_seed``
        (42) and ``sparse_weight`` (0.5; 0 reads the dense vector alone, as Rasa's)."""
        return {**SklearnIntentClassifier.get_default_config(), "random_seed": 42, "sparse_weight": 0.5}

    def _create_classifier(self, num_threads: int, y: Any) -> Any:
        """Rasa's GridSearchCV over an SVC, with the SVC's ``random_state`` set to ``random_seed``; for a grid of
        one point, that SVC with the point's parameters."""
        search = super()._create_classifier(num_threads, y)
        svc = search.estimator.set_params(random_state=self.component_config["random_seed"])
        [grid] = search.param_grid
        if all(len(values) == 1 for values in grid.values()):
            return svc.set_params(**{name: values[0] for name, values in grid.items()})
        return search

    def predict_prob(self, X: scipy.sparse.csr_matrix) -> np.ndarray:
        """(rows, intents) probabilities, as the linear SVC's ``predict_proba`` (libsvm: Platt-scaled pairwise decision
        values coupled by the second method of Wu, Lin and Weng, 2004), with two shortcuts: the pairwise decision values
        come from the primal weights (``coef_``, taken once per classifier) over the row's non-zero columns, instead of
        a dot product with every support vector; and the coupling's quadratic problem min pᵀQp, Σp = 1 is solved
        exactly (p ∝ Q⁻¹1, a linear system of the intents' size) where libsvm iterates to a tolerance of 0.005/k.
        ≈ 0.8 ms a message instead of ≈ 5 ms; the probabilities differ from libsvm's by less than 1e-3 (5.6e-4 at most
        on the held-out split's 1,184 messages, no top intent changed). Another kernel: scikit-learn's own."""
        if getattr(self.clf, "kernel", None) != "linear":
            return super().predict_prob(X)
        if self._weights is None or self._weights[0] is not self.clf:
            self._weights = (self.clf, scipy.sparse.csc_matrix(self.clf.coef_))
        classifier, weights = self._weights
        rows = []
        for row in scipy.sparse.csr_matrix(X):
            decision = weights[:, row.indices] @ row.data + classifier.intercept_
            pairwise = np.clip(1 / (1 + np.exp(decision * classifier.probA_ + classifier.probB_)), 1e-7, 1 - 1e-7)
            rows.append(couple(pairwise, len(classifier.classes_)))
        return np.array(rows)

    def _sparse_blocks(self, message: Message) -> dict[str, Any]:
        """The message's sparse sentence features of its text by featurizer (of the ``featurizers`` configured, all
        when unset); a featurizer that found no token (an empty text, "👍") gives none."""
        wanted = self.component_config.get(FEATURIZERS)
        return {
            features.origin: features.features
            for features in message.features
            if features.is_sparse()
            and features.type == FEATURE_TYPE_SENTENCE
            and features.attribute == TEXT
            and (not wanted or features.origin in wanted)
        }

    def _get_sentence_features(self, message: Message) -> scipy.sparse.csr_matrix:  # type: ignore[override]
        """The features of one message, shape (1, dense + the layout's widths): Rasa's dense sentence vector
        (ValueError if the message has none) and ``sparse_weight`` × its sparse sentence features laid out as
        :attr:`sparse_layout` (zeros for a featurizer that gave none), L2-normalised together."""
        dense = scipy.sparse.csr_matrix(SklearnIntentClassifier._get_sentence_features(message).reshape(1, -1))
        if not self.sparse_layout:
            return dense
        blocks = self._sparse_blocks(message)
        sparse = scipy.sparse.hstack(
            [blocks.get(origin, scipy.sparse.csr_matrix((1, width))) for origin, width in self.sparse_layout],
            format="csr",
        )
        return scipy.sparse.hstack([dense, self.component_config["sparse_weight"] * normalize(sparse)], format="csr")

    def train(self, training_data: TrainingData) -> Resource:
        """Rasa's training, on the rows of :meth:`_get_sentence_features` stacked as one sparse matrix (Rasa
        stacks dense vectors), the sparse layout taken from the training examples; fewer than two intents: Rasa's
        warning, nothing trained."""
        examples = [
            message
            for message in training_data.intent_examples
            if message.features_present(attribute=TEXT, featurizers=self.component_config.get(FEATURIZERS))
        ]
        labels = [message.get(INTENT) for message in examples]
        if len(set(labels)) < 2:
            return super().train(training_data)
        widths = {
            origin: block.shape[1] for message in examples for origin, block in self._sparse_blocks(message).items()
        }
        self.sparse_layout = sorted(widths.items()) if self.component_config["sparse_weight"] else []
        y = self.transform_labels_str2num(labels)
        self.clf = self._create_classifier(self.component_config["num_threads"], y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as Rasa: scikit-learn's ill-defined F-score warnings in small folds
            self.clf.fit(scipy.sparse.vstack([self._get_sentence_features(m) for m in examples], format="csr"), y)
        self.persist()
        return self._resource

    def persist(self) -> None:
        """Rasa's two files, which Rasa's :meth:`load` reads too (the label encoder's classes as JSON, the SVC by
        skops: a grid search's best one, or the one fitted without a search), and the sparse layout as JSON."""
        if self.clf is None:
            return
        with self._model_storage.write_to(self._resource) as model_dir:
            name = self.__class__.__name__
            rasa.shared.utils.io.dump_obj_as_json_to_file(model_dir / f"{name}_encoder.json", list(self.le.classes_))
            rasa.shared.utils.io.dump_obj_as_json_to_file(model_dir / f"{name}_sparse_layout.json", self.sparse_layout)
            skops.io.dump(getattr(self.clf, "best_estimator_", self.clf), model_dir / f"{name}_classifier.skops")

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SeededSklearnIntentClassifier:
        """Rasa's load (skops refuses a file with a type it does not trust; an untrained component when there is
        no file or it is refused), trusting also :data:`SPARSE_MATRIX_TYPE`."""
        try:
            with model_storage.read_from(resource) as model_dir:
                name = cls.__name__
                classifier_file = model_dir / f"{name}_classifier.skops"
                untrusted = set(skops.io.get_untrusted_types(file=classifier_file)) - {SPARSE_MATRIX_TYPE}
                if untrusted:
                    log.error("untrusted types %s in %s: no intent classifier loaded", untrusted, classifier_file)
                    return cls(config, model_storage, resource)
                classifier = skops.io.load(classifier_file, trusted=[SPARSE_MATRIX_TYPE])
                classes = rasa.shared.utils.io.read_json_file(model_dir / f"{name}_encoder.json")
                layout_file = model_dir / f"{name}_sparse_layout.json"  # none: trained on the dense vector alone
                layout = rasa.shared.utils.io.read_json_file(layout_file) if layout_file.exists() else []
        except (ValueError, FileNotFoundError):  # ValueError: Rasa's model storage has no such resource
            log.debug("no trained %s in the model storage", cls.__name__)
            return cls(config, model_storage, resource)
        loaded = cls(config, model_storage, resource, classifier, LabelEncoder(), [tuple(pair) for pair in layout])
        loaded.transform_labels_str2num(classes)
        return loaded
