"""bench.nlu's side inside the Rasa server's environment (`.venv-rasa`, Python 3.10): vectors computed elsewhere.

- `python -m bench.nlu_vectors texts FILE... --out JSON`: every text of the NLU files and each of its
  WhitespaceTokenizer tokens, as a JSON list (what `bench.nlu` embeds with all-MiniLM-L6-v2 in `.venv`);
- `PrecomputedFeaturizer`: a `nlu.featurizers.SentenceEncoderFeaturizer` whose encoder is a lookup in an .npz
  (`texts`, `vectors` of shape (n, dim)), so its features follow E5Featurizer's scheme and `token_features` setting
  exactly. A text missing from the file raises KeyError: it is for benchmarks on known data sets only.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT

from nlu.featurizers import SentenceEncoderFeaturizer


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class PrecomputedFeaturizer(SentenceEncoderFeaturizer):
    """Vectors looked up by text in the .npz at config `vectors` (see the module docstring)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The base's, and `vectors`: path of the .npz."""
        return {**SentenceEncoderFeaturizer.get_default_config(), "vectors": None}

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name=name, config=config)
        data = np.load(config["vectors"])
        self._vectors = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))
        self.dimensions = int(data["vectors"].shape[1])

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        super().validate_config(config)
        if not config.get("vectors"):
            raise InvalidConfigException("PrecomputedFeaturizer needs `vectors`: the path of an .npz")

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vectors[text] for text in texts])


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
