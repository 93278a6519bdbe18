"""Rasa's FallbackClassifier, and a blank message is a fallback too.

A message that is empty or only whitespace says nothing, yet DIET still ranks the intents on the features
of nothing (with the e5 sentence feature, ``affirm`` at 0.53–0.60): a blank message sent to the Rasa
server's REST webhook would answer "yes" to whatever the bot had asked, confirming an erasure among others.
Closer's own channels drop blank messages before Rasa; this keeps Rasa's webhooks and ``rasa shell`` safe.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class BlankAwareFallbackClassifier(FallbackClassifier):
    """``nlu_fallback`` (at the configured threshold's confidence) for a blank message, as for one whose top
    intent is below ``threshold`` or within ``ambiguity_threshold`` of the second (Rasa's own rules)."""

    def _should_fallback(self, message: Message) -> bool:
        return not (message.get(TEXT) or "").strip() or super()._should_fallback(message)
