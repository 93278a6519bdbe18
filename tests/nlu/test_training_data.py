"""data/nlu as the CRF entity extractor learns from it, and the regex featurizer that marks lookup-table words
(run by scripts/test.sh with .venv-rasa)."""

from collections import Counter
from pathlib import Path

import yaml
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.featurizers import NamedRegexFeaturizer

DATA = Path(__file__).resolve().parents[2] / "data" / "nlu"


def test_every_synonym_is_in_the_lookup_table_of_its_entity():
    """A synonym's words ("couch", "кресла", "الكنبات") are the catalog words the CRF should tag: its lookup table
    marks them even in a phrasing no example has. Add a new synonym to its entity's table in data/nlu/lookups.yml.
    Only the `synonym:` sections count (a value annotated inline in an example stays out: in the held-out split it
    could be a test example's word)."""
    data = load_data(str(DATA))
    annotated: dict[str, Counter] = {}
    for example in data.entity_examples:
        for entity in example.get("entities", []):
            annotated.setdefault(entity["value"], Counter())[entity["entity"]] += 1
    tables: dict[str, set[str]] = {}
    for table in data.lookup_tables:
        tables.setdefault(table["name"], set()).update(table["elements"])
    missing = []
    for path in sorted(DATA.rglob("*.yml")):
        for item in yaml.safe_load(path.read_text()).get("nlu") or []:
            if "synonym" in item:
                [(entity, _)] = annotated[item["synonym"]].most_common(1)
                surfaces = [line[2:].strip() for line in item["examples"].splitlines() if line.strip()]
                missing += [f"{path.name}: {s!r} not in table {entity!r}" for s in surfaces if s not in tables[entity]]
    assert not missing, "\n".join(missing)


def test_a_lookup_table_name_is_defined_once():
    """`rasa data split` (make nlu-eval) keeps one table of a name: a second table of the same name, say in another
    language's file, would be missing from the held-out evaluation but not from `rasa train`."""
    names = Counter(table["name"] for table in load_data(str(DATA)).lookup_tables)
    assert [name for name, count in names.items() if count > 1] == []


def regex_featurized(component_class: type[RegexFeaturizer], tmp_path: Path, text: str) -> dict[str, bool]:
    """The token flags of the first token of ``text`` after training ``component_class`` on two `colour` lookup
    tables (an English one, then an Arabic one)."""
    data = TrainingData(
        lookup_tables=[{"name": "colour", "elements": ["oak", "walnut"]}, {"name": "colour", "elements": ["بني"]}]
    )
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    component = component_class.create(component_class.get_default_config(), storage, Resource("regex"), context)
    component.train(data)
    message = Message(data={TEXT: text})
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process([message])
    component.process([message])
    return message.get("text_tokens")[0].get("pattern")


def test_a_word_of_the_first_table_of_a_name_is_marked(tmp_path):
    assert regex_featurized(NamedRegexFeaturizer, tmp_path, "oak desks") == {"colour": True}
    assert regex_featurized(NamedRegexFeaturizer, tmp_path, "بني") == {"colour": True}
    assert regex_featurized(NamedRegexFeaturizer, tmp_path, "grey desks") == {"colour": False}
    # Rasa's own featurizer keeps the last table's answer only
    assert regex_featurized(RegexFeaturizer, tmp_path, "oak desks") == {"colour": False}
