"""The NLU inbox against the real domain.yml and data/ (copied into a temp project), a real migrated DB, a
tracker store written by Rasa (tests/review/test_conversations.py) and Rasa itself (.venv-rasa): the export
passes `rasa data validate --fail-on-warnings` and Rasa's own reader finds the intended examples, each in the
file of its message's language; a saved test story passes `rasa test core` with the trained model."""

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.core import db
from bot.core.models import NluAnnotation
from bot.core.settings import ROOT
from bot.core.tracker import TrackerReader
from bot.review import annotations, stories
from bot.review.annotations import InvalidAnnotation, annotate, export
from tests.review.test_conversations import GOLF, HOTEL, INDIA, multilingual, rasa_write, stored_events

RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
MODEL = ROOT / "models" / "closer.tar.gz"
# Two real conversations from a tracker store (var/tracker.db) of this project: rows of Rasa's `events` table.
TRACKER_EVENTS = json.loads((Path(__file__).parents[1] / "data" / "tracker_events.json").read_text(encoding="utf-8"))
MANAGER = "sara@example.com"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's domain, config and training data."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("domain.yml", "config.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "data", root / "data")
    return root


@pytest.fixture
async def url(db_url: str) -> str:
    yield db_url
    await db.get_engine(db_url).dispose()


@pytest.fixture(scope="module")
def tracker_path(tmp_path_factory) -> Path:
    """A tracker store written by Rasa with the Arabic, Russian and French conversations of
    :func:`tests.review.test_conversations.multilingual` (the annotations of the other tests name none of them)."""
    path = tmp_path_factory.mktemp("rasa") / "tracker.db"
    rasa_write(path, multilingual())
    return path


@pytest.fixture
async def tracker(tracker_path: Path) -> TrackerReader:
    reader = TrackerReader(f"sqlite+aiosqlite:///{tracker_path}")
    yield reader
    await reader.close()


def events_of(conversation_id: str) -> list[tuple[int, dict]]:
    """(event id, event dict) of one conversation, a fresh copy."""
    return [
        (row["id"], json.loads(json.dumps(row["data"])))
        for row in TRACKER_EVENTS
        if row["sender_id"] == conversation_id
    ]


async def correct(url: str, project: Path, event_id: int, text: str, intent: str, entities=(), conversation_id="web-1"):
    async with db.session_scope(url) as session:
        annotation = await annotate(
            session,
            project,
            conversation_id=conversation_id,
            event_id=event_id,
            text=text,
            predicted_intent="chitchat",
            predicted_confidence=0.41,
            intent=intent,
            entities=list(entities),
            created_by=MANAGER,
        )
        return annotation.id


async def rows(url: str) -> list[NluAnnotation]:
    async with db.session_scope(url) as session:
        return list((await session.scalars(select(NluAnnotation).order_by(NluAnnotation.id))).all())


@pytest.mark.parametrize(
    "text, intent, entities, complaint",
    [
        ("that's too expensive", "haggle", [], "unknown intent 'haggle'"),
        ("that's too expensive", "nlu_fallback", [], "unknown intent 'nlu_fallback'"),
        ("20 chairs", "ask_products", [{"start": 0, "end": 2, "entity": "amount"}], "unknown entity 'amount'"),
        ("20 chairs", "ask_products", [{"start": 3, "end": 12, "entity": "category"}], "is not inside"),
        ("20 chairs", "ask_products", [{"start": 3, "end": 5, "entity": "category"}], "cuts a word"),
        ("20 chairs", "ask_products", [{"start": 2, "end": 9, "entity": "category"}], "whitespace"),
        (
            "20 office chairs",
            "ask_products",
            [{"start": 3, "end": 16, "entity": "category"}, {"start": 10, "end": 16, "entity": "product"}],
            "overlap",
        ),
        ("20 chairs", "ask_products", [{"start": "0", "end": 2, "entity": "quantity"}], "is not inside"),
        (
            "20 chairs",
            "ask_products",
            [{"start": 0, "end": 2, "entity": "quantity", "value": 20}],
            "value must be text",
        ),
        ("/greet", "greet", [], "button payload"),
        ("   ", "greet", [], "empty"),
        ("see [this](link) chair", "ask_products", [], "cannot be written"),
    ],
)
async def test_annotate_rejects_what_rasa_would_not_accept(url, project, caplog, text, intent, entities, complaint):
    with pytest.raises(InvalidAnnotation, match=complaint):
        await correct(url, project, 7, text, intent, entities)
    assert await rows(url) == []
    assert complaint.split("'")[0] in caplog.text


async def test_a_second_correction_replaces_the_pending_one_and_discarded_ones_stay(url, project):
    first = await correct(url, project, 33, "that's too expensive", "objection_think")
    second = await correct(url, project, 33, "  that's too expensive\n", "objection_price")
    [row] = await rows(url)
    assert (row.id, row.corrected_intent, row.text, row.status, row.created_by) == (
        first,
        "objection_price",
        "that's too expensive",
        "pending",
        MANAGER,
    )
    assert second == first
    async with db.session_scope(url) as session:
        await annotations.discard(session, first)
    with pytest.raises(annotations.AnnotationNotPending):
        async with db.session_scope(url) as session:
            await annotations.discard(session, first)
    third = await correct(url, project, 33, "that's too expensive", "objection_price")
    assert [(r.id, r.status) for r in await rows(url)] == [(first, "discarded"), (third, "pending")]
    async with db.session_scope(url) as session:
        pending = await annotations.list_annotations(session, status="pending", conversation_id="web-1")
    assert [a.id for a in pending] == [third]


def rasa_examples(path: Path) -> list[dict]:
    """The intent examples of an NLU file as Rasa's own reader (RasaYAMLReader, .venv-rasa) reads them."""
    script = (
        "import json, sys\nfrom rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader\n"
        "data = RasaYAMLReader().read(sys.argv[1])\n"
        "print(json.dumps([{'text': m.get('text'), 'intent': m.get('intent'), 'entities': [{k: e[k] for k in "
        "('start', 'end', 'entity', 'value')} for e in m.get('entities') or []]}\n"
        "                  for m in data.intent_examples]))"
    )
    result = subprocess.run([RASA_PYTHON, "-c", script, path], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


async def test_export_merges_skips_duplicates_reports_conflicts_and_passes_rasa_validate(url, project, tracker):
    target = project / "data" / "nlu" / "annotations.yml"
    stock = (
        "need 30 standing desks and 30 leather chairs",
        "ask_products",
        [
            {"start": 5, "end": 7, "entity": "quantity"},
            {"start": 8, "end": 22, "entity": "category", "value": "desk"},
            {"start": 27, "end": 29, "entity": "quantity"},
            {"start": 30, "end": 37, "entity": "material"},
            {"start": 38, "end": 44, "entity": "category", "value": "office_chair"},
        ],
    )
    quoted = ('that\'s "way" too pricey: 50% off? #budget - [sic]', "objection_price", [])
    lines = ("hi there\nare you a real person?", "bot_challenge", [])
    arabic = ("هل لديكم كراسي مكتب؟", "ask_products", [])
    written = [await correct(url, project, n, *example) for n, example in enumerate((stock, quoted, lines, arabic), 1)]
    # products.yml holds "I need [12](quantity) ergonomic [chairs]{…} … AED each" and "any [standing desks](category) …"
    duplicate = await correct(
        url,
        project,
        5,
        "i need 12 ergonomic  chairs for our office, around 1500 AED each",
        "ask_products",
        [{"start": 7, "end": 9, "entity": "quantity"}],
    )
    other_intent = await correct(url, project, 6, "Any standing desks under 2000?", "ask_price")
    synonym = await correct(
        url,
        project,
        8,
        "cheap chairs please",
        "ask_products",
        [{"start": 6, "end": 12, "entity": "category", "value": "desk"}],
    )

    async with db.session_scope(url) as session:
        summary = await export(session, project, tracker)

    assert summary.paths == [target]
    assert (summary.written, summary.duplicates) == (written, [duplicate])
    assert [(c.annotation_id, c.intent) for c in summary.conflicts] == [
        (other_intent, "ask_price"),
        (synonym, "ask_products"),
    ]
    assert "ask_products (data/nlu/products.yml)" in summary.conflicts[0].reason
    assert "'chairs' is already a synonym of 'office_chair'" in summary.conflicts[1].reason
    status = {r.id: (r.status, r.exported_at is not None) for r in await rows(url)}
    assert status == {
        **dict.fromkeys([*written, duplicate], ("exported", True)),
        other_intent: ("pending", False),
        synonym: ("pending", False),
    }
    first = target.read_text(encoding="utf-8")
    assert 'version: "3.1"' in first
    assert (
        '- need [30](quantity) [standing desks]{"entity": "category", "value": "desk"} and [30](quantity) '
        '[leather](material) [chairs]{"entity": "category", "value": "office_chair"}'
    ) in first

    # A later export adds to the file (here also to an intent it already holds) and keeps what it had.
    again = await correct(url, project, 9, 'THAT\'S "WAY" TOO PRICEY: 50% off? #budget - [sic]', "objection_price")
    later = await correct(
        url, project, 10, "hmm, 900 is over our budget", "objection_price", [{"start": 5, "end": 8, "entity": "budget"}]
    )
    async with db.session_scope(url) as session:
        summary = await export(session, project, tracker)
    assert (summary.written, summary.duplicates) == ([later], [again])
    assert [c.annotation_id for c in summary.conflicts] == [other_intent, synonym]  # still pending, reported again
    items = yaml.safe_load(target.read_text(encoding="utf-8"))["nlu"]
    assert [item["intent"] for item in items] == ["ask_products", "objection_price", "bot_challenge"]
    assert items[1]["examples"] == (
        '- that\'s "way" too pricey: 50% off? #budget - [sic]\n- hmm, [900](budget) is over our budget\n'
    )

    budget = ("hmm, 900 is over our budget", "objection_price", [{"start": 5, "end": 8, "entity": "budget"}])
    assert [(m["text"], m["intent"], m["entities"]) for m in await asyncio.to_thread(rasa_examples, target)] == [
        (
            text,
            intent,
            [
                {
                    "start": e["start"],
                    "end": e["end"],
                    "entity": e["entity"],
                    "value": e.get("value", text[e["start"] : e["end"]]),
                }
                for e in entities
            ],
        )
        for text, intent, entities in (stock, arabic, quoted, budget, lines)
    ]

    result = await asyncio.to_thread(
        subprocess.run,
        [
            RASA,
            "data",
            "validate",
            "--data",
            project / "data",
            "--domain",
            project / "domain.yml",
            "--config",
            project / "config.yml",
            "--fail-on-warnings",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


async def test_export_with_nothing_pending_leaves_the_data_alone(url, project, tracker):
    async with db.session_scope(url) as session:
        summary = await export(session, project, tracker)
    assert (summary.written, summary.duplicates, summary.conflicts) == ([], [], [])
    assert not (project / "data" / "nlu" / "annotations.yml").exists()


async def test_an_intent_dropped_from_the_domain_since_is_a_conflict(url, project, tracker):
    kept = await correct(url, project, 1, "hmm, 900 is over our budget", "objection_price")
    dropped = await correct(url, project, 2, "fine, I'll think about it over the weekend", "objection_think")
    domain = project / "domain.yml"
    domain.write_text(domain.read_text(encoding="utf-8").replace("  - objection_think\n", "", 1), encoding="utf-8")
    async with db.session_scope(url) as session:
        summary = await export(session, project, tracker)
    assert summary.written == [kept]
    assert [(c.annotation_id, c.reason) for c in summary.conflicts] == [
        (dropped, "domain.yml no longer declares objection_think")
    ]


async def test_export_of_unreadable_training_data_fails_and_leaves_annotations_pending(url, project, tracker, caplog):
    await correct(url, project, 1, "hmm, 900 is over our budget", "objection_price")
    (project / "data" / "nlu" / "broken.yml").write_text("nlu:\n- intent: greet\n  examples: [unclosed\n")
    with pytest.raises(annotations.ExportError, match=r"broken.yml"):
        async with db.session_scope(url) as session:
            await export(session, project, tracker)
    assert [r.status for r in await rows(url)] == ["pending"]
    assert not (project / "data" / "nlu" / "annotations.yml").exists()
    assert "NLU export failed" in caplog.text


async def test_each_example_goes_into_the_file_of_its_messages_language(url, project, tracker, tracker_path):
    def said(conversation_id: str, text: str) -> int:
        return next(
            e[0]
            for e in stored_events(tracker_path)
            if e[1] == conversation_id and e[2] == "user" and json.loads(e[6])["text"] == text
        )

    quantity = {"start": 6, "end": 8, "entity": "quantity"}
    corrections = [
        # the Arabic message after the one whose SlotSet made the conversation Arabic
        (GOLF, "أحتاج 12 كرسي، كم السعر؟", "ask_price", [quantity]),
        (HOTEL, "hello, which desks fit a small studio?", "ask_products", []),  # before the customer asked for Russian
        (HOTEL, "нужно 12 столов для офиса", "ask_products", [quantity]),
        (INDIA, "привет, есть кресла?", "ask_products", []),
        (INDIA, "merci, au revoir", "goodbye", []),  # French is not served: the default language
    ]
    ids = [
        await correct(url, project, said(cid, text), text, intent, entities, conversation_id=cid)
        for cid, text, intent, entities in corrections
    ]
    async with db.session_scope(url) as session:
        summary = await export(session, project, tracker)

    nlu = project / "data" / "nlu"
    arabic, english, russian = nlu / "ar" / "annotations.yml", nlu / "annotations.yml", nlu / "ru" / "annotations.yml"
    assert (summary.paths, summary.written, summary.duplicates, summary.conflicts) == (
        [arabic, english, russian],
        ids,
        [],
        [],
    )
    assert [r.status for r in await rows(url)] == ["exported"] * 5
    assert [(m["text"], m["intent"], m["entities"]) for m in await asyncio.to_thread(rasa_examples, arabic)] == [
        ("أحتاج 12 كرسي، كم السعر؟", "ask_price", [{**quantity, "value": "12"}])
    ]
    assert [(m["text"], m["intent"], m["entities"]) for m in await asyncio.to_thread(rasa_examples, russian)] == [
        ("нужно 12 столов для офиса", "ask_products", [{**quantity, "value": "12"}]),
        ("привет, есть кресла?", "ask_products", []),
    ]
    assert yaml.safe_load(english.read_text(encoding="utf-8"))["nlu"] == [
        {"intent": "ask_products", "examples": "- hello, which desks fit a small studio?\n"},
        {"intent": "goodbye", "examples": "- merci, au revoir\n"},
    ]
    assert "- أحتاج [12](quantity) كرسي، كم السعر؟\n" in arabic.read_text(encoding="utf-8")


def test_story_rules_follow_rasas_exporter():
    """Bookkeeping events and bot utterances are left out, an entity found by two extractors is written
    once, a button payload stays as it is, and a restart starts a new story."""
    events = events_of("web-abcdefgh1234")
    greet = {"event": "user", "text": "/greet", "parse_data": {"intent": {"name": "greet", "confidence": 1.0}}}
    restart = [(999, {"event": "restart"}), (1000, greet), (1001, {"event": "action", "name": "action_greet"})]
    text = stories.story_yaml("stock check", events + restart, {}, "from a test")
    assert text.startswith('# from a test\nversion: "3.1"\n')
    assert yaml.safe_load(text)["stories"] == [
        {
            "story": "stock check (1)",
            "steps": [
                {"user": "is [OC-1006](sku) in stock?\n", "intent": "ask_stock"},
                {"action": "action_show_stock"},
                {"slot_was_set": [{"shown_skus": ["OC-1006"]}]},
                {"slot_was_set": [{"sales_stage": "solution"}]},
            ],
        },
        {"story": "stock check (2)", "steps": [{"user": "/greet\n", "intent": "greet"}, {"action": "action_greet"}]},
    ]


async def test_story_file_names_and_refusals(url, project):
    path = stories.story_path(project, "Chairs: too expensive?!")
    assert path == project / "tests" / "stories" / "test_chairs_too_expensive.yml"
    with pytest.raises(stories.InvalidStoryName):
        stories.story_path(project, "?!")
    events = events_of("web-abcdefgh1234")
    async with db.session_scope(url) as session:
        path = await stories.save_test_story(session, project, "web-abcdefgh1234", events, "stock check")
        before = path.read_text(encoding="utf-8")
        with pytest.raises(stories.StoryExists):
            await stories.save_test_story(session, project, "web-abcdefgh1234", events, "Stock check")
        assert path.read_text(encoding="utf-8") == before
        with pytest.raises(stories.NothingToSave):
            await stories.save_test_story(
                session, project, "web-abcdefgh1234", events[:3], "Stock check", overwrite=True
            )


async def test_saved_test_story_uses_the_correction_and_passes_rasa_test_core(url, project, tmp_path):
    """A real conversation whose "that's too expensive" the NLU had read as chitchat (changed in the copy:
    the recorded prediction was right) and a manager corrected; a discarded correction is ignored."""
    conversation = "web-84fa6745-9303-43bc-8b0a-83a5e5b495a7"
    events = events_of(conversation)
    [(event_id, message)] = [(i, e) for i, e in events if e.get("text") == "that's too expensive"]
    message["parse_data"]["intent"] = {"name": "chitchat", "confidence": 0.41}
    await correct(url, project, event_id, message["text"], "objection_price", conversation_id=conversation)
    [(quantity_id, quantity)] = [(i, e) for i, e in events if e.get("text", "").startswith("I need 12")]
    discarded = await correct(url, project, quantity_id, quantity["text"], "ask_price", conversation_id=conversation)
    async with db.session_scope(url) as session:
        await annotations.discard(session, discarded)
        path = await stories.save_test_story(session, project, conversation, events, "Chairs, then too expensive")

    assert path == project / "tests" / "stories" / "test_chairs_then_too_expensive.yml"
    steps = yaml.safe_load(path.read_text(encoding="utf-8"))["stories"][0]["steps"]
    users = [step for step in steps if "user" in step]
    assert [(s["user"], s["intent"]) for s in users] == [
        ("/greet\n", "greet"),
        (
            (
                'I need [12](quantity) ergonomic [chairs]{"entity": "category", "value": "office_chair"} '
                "for our office, around [1500](budget) AED each\n"
            ),
            "ask_products",
        ),
        ("that's too expensive\n", "objection_price"),
    ]
    assert [s["action"] for s in steps if "action" in s] == [
        "action_greet",
        "action_search_products",
        "action_handle_objection",
    ]

    result = await asyncio.to_thread(
        subprocess.run,
        [
            RASA,
            "test",
            "core",
            "--stories",
            path,
            "--model",
            MODEL,
            "--fail-on-prediction-errors",
            "--out",
            tmp_path / "results",
        ],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # the model's NLU components (nlu/) live in the checkout
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "results" / "story_report.json").read_text())
    assert report["conversation_accuracy"] == {"accuracy": 1.0, "correct": 1, "with_warnings": 0, "total": 1}
