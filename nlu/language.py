"""The customer's language as an entity: ``language`` with the ISO 639-1 code of the business's language a
message is clearly written in (:func:`bot.contracts.languages.detect`), which fills the ``language`` slot
(domain.yml) before the bot answers, so Rasa's conditional response variations and the actions' gettext
catalogs answer in it.

The business's languages are read from its ``company.yml`` (:func:`bot.contracts.business.knowledge_dir`) when the
component is created, i.e. when the Rasa server loads the model. A message that already has a ``language`` entity
(the customer asked for a language: "English please", a widget button) keeps it: asking in Arabic for English means
English.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.contracts.business import knowledge_dir
from bot.contracts.languages import detect

ENTITY = "language"


def business_languages(folder: Path) -> tuple[str, ...]:
    """``languages`` of ``folder/company.yml`` (a knowledge folder; ISO 639-1 codes; ``("en",)`` when it lists none).
    Raises OSError or yaml.YAMLError when the file cannot be read."""
    raw = yaml.safe_load((folder / "company.yml").read_text(encoding="utf-8")) or {}
    return tuple(raw.get("languages") or ("en",))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageDetector(GraphComponent, EntityExtractorMixin):
    """Adds a ``language`` entity (value: ISO 639-1 code; an empty span at the start) to each message clearly
    written in one of the business's languages."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageDetector:
        """Reads the business's languages (nothing is trained or persisted)."""
        return cls(business_languages(knowledge_dir()))

    def __init__(self, languages: tuple[str, ...]) -> None:
        self.languages = languages

    def process(self, messages: list[Message]) -> list[Message]:
        """Each message with the ``language`` entity added where its language is clear and none was asked for."""
        for message in messages:
            entities = message.get(ENTITIES, [])
            if any(entity.get("entity") == ENTITY for entity in entities):
                continue
            text = message.get(TEXT) or ""
            language = detect(text, self.languages)
            if language:
                # an empty span: the language is the whole message's, not some words', so it overlaps no entity
                detected = {"entity": ENTITY, "value": language, "start": 0, "end": 0, "confidence": 1.0}
                message.set(ENTITIES, [*entities, self.add_extractor_name([detected])[0]], add_to_output=True)
        return messages
