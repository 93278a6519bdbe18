"""bench.nlu's side inside the Rasa server's environment (`.venv-rasa`, Python 3.10): vectors computed elsewhere.

- `python -m bench.nlu_vectors texts FILE... --out JSON`: every text of the NLU files and each of its
  WhitespaceTokenizer tokens, as a JSON list (what `bench.nlu` embeds with all-MiniLM-L6-v2 in `.venv`);
- `PrecomputedFeaturizer`: a Rasa graph component (message featurizer) that adds those vectors, read from an .npz
  (`texts`, `vectors` of shape (n, dim)), as the sentence feature (1, dim) and per-token sequence features
  (tokens, dim), the scheme of nlu.featurizers.E5Featurizer. A text missing from the file raises KeyError: it is
  for benchmarks on known data sets only.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class PrecomputedFeaturizer(DenseFeaturizer, GraphComponent):
    """Sentence and per-token features looked up in an .npz by text (see the module docstring)."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """`vectors`: path of the .npz."""
        return {**DenseFeaturizer.get_default_config(), "vectors": None}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PrecomputedFeaturizer:
        return cls(name=execution_context.node_name, config=config)

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name=name, config=config)
        data = np.load(config["vectors"])
        self._vectors = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if not config.get("vectors"):
            raise ValueError("PrecomputedFeaturizer needs `vectors`: the path of an .npz")

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process([example for example in training_data.training_examples if example.get(TEXT)])
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if message.get(TEXT):
                tokens = message.get(TOKENS_NAMES[TEXT]) or []
                sequence = np.stack([self._vectors[t.text] for t in tokens]) if tokens else None
                sentence = self._vectors[message.get(TEXT)][np.newaxis, :]
                self.add_features_to_message(sequence=sequence, sentence=sentence, attribute=TEXT, message=message)
        return messages


def texts(files: list[str]) -> list[str]:
    """Each example's text and its WhitespaceTokenizer tokens, from Rasa NLU YAML files."""
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
    from rasa.shared.nlu.training_data.loading import load_data

    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    out: set[str] = set()
    for path in files:
        examples = [example for example in load_data(path).training_examples if example.get(TEXT)]
        for example in examples:
            out.add(example.get(TEXT))
            out.update(token.text for token in tokenizer.tokenize(example, TEXT))
    return sorted(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="texts and tokens of NLU files, for bench.nlu")
    parser.add_argument("command", choices=["texts"])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "w") as out:
        json.dump(texts(args.files), out)
