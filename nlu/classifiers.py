"""Two of Rasa's classifiers with one change each: the SVM intent classifier with a seed, and the fallback
classifier that treats a blank message as a fallback.

Rasa's SklearnIntentClassifier calibrates the SVM's probabilities (Platt scaling, an internal cross-validation)
with numpy's global random state, so two trainings on the same data give different confidences; with
``random_seed`` (default 42, as DIETClassifier's in config.yml) the same data trains the same model, which keeps
the end-to-end tables and the fallback threshold reproducible.

A message that is empty or only whitespace says nothing, yet the classifiers still rank the intents on the
features of nothing (with the e5 sentence feature, ``affirm`` at 0.53–0.60): a blank message sent to the Rasa
server's REST webhook would answer "yes" to whatever the bot had asked, confirming an erasure among others.
Closer's own channels drop blank messages before Rasa; this keeps Rasa's webhooks and ``rasa shell`` safe.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.nlu.classifiers.sklearn_intent_classifier import SklearnIntentClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class BlankAwareFallbackClassifier(FallbackClassifier):
    """``nlu_fallback`` (at the configured threshold's confidence) for a blank message, as for one whose top
    intent is below ``threshold`` or within ``ambiguity_threshold`` of the second (Rasa's own rules)."""

    def _should_fallback(self, message: Message) -> bool:
        return not (message.get(TEXT) or "").strip() or super()._should_fallback(message)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class SeededSklearnIntentClassifier(SklearnIntentClassifier):
    """Rasa's SklearnIntentClassifier (an SVM over the message's dense sentence features, C and kernel chosen
    by grid search, probabilities by Platt scaling) whose SVM draws from ``random_seed``."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Rasa's defaults (C grid [1, 2, 5, 10, 20, 100], linear kernel, f1_weighted scoring) plus ``random_seed``."""
        return {**SklearnIntentClassifier.get_default_config(), "random_seed": 42}

    def _create_classifier(self, num_threads: int, y: Any) -> Any:
        """Rasa's GridSearchCV over an SVC, with the SVC's ``random_state`` set to ``random_seed``."""
        search = super()._create_classifier(num_threads, y)
        search.estimator.set_params(random_state=self.component_config["random_seed"])
        return search
