"""Which business runs: CLOSER_BUSINESS resolved the same way by the settings, the Rasa-side modules and the
scripts (scripts/business.sh), each business with its own runtime data and model."""

import os
import subprocess
import sys

import pytest

from bot.contracts import business
from bot.contracts.database import default_url
from bot.core.settings import ROOT, Settings

PACK = {"CLOSER_BUSINESS": "examples/ai-studio"}


def test_the_default_business_is_the_project_root_with_var_and_models_closer():
    assert business.business_dir({}) == ROOT
    assert (business.business_name({}), business.var_dir({})) == ("closer", ROOT / "var")
    assert business.model_path({}) == ROOT / "models" / "closer.tar.gz"
    assert business.knowledge_dir({}) == ROOT / "knowledge"
    assert default_url({}) == f"sqlite+aiosqlite:///{ROOT / 'var' / 'closer.db'}"


def test_another_business_has_its_own_folder_data_and_model():
    assert business.business_dir(PACK) == ROOT / "examples" / "ai-studio"
    assert business.var_dir(PACK) == ROOT / "var" / "businesses" / "ai-studio"
    assert business.model_path(PACK) == ROOT / "models" / "ai-studio.tar.gz"
    assert business.knowledge_dir(PACK) == ROOT / "examples" / "ai-studio" / "knowledge"
    assert business.knowledge_dir({**PACK, "CLOSER_KNOWLEDGE_DIR": "/srv/knowledge"}).as_posix() == "/srv/knowledge"
    absolute = {"CLOSER_BUSINESS": str(ROOT / "examples" / "ai-studio")}
    assert business.business_dir(absolute) == business.business_dir(PACK)


def test_a_business_folder_without_knowledge_is_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"CLOSER_BUSINESS=.*has no knowledge/ folder"):
        business.business_dir({"CLOSER_BUSINESS": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-m", "bot.contracts.business"],
        cwd=ROOT,
        env={**os.environ, "CLOSER_BUSINESS": "no/such/business"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "no knowledge/ folder" in result.stderr and not result.stdout


def test_the_settings_follow_the_business_unless_a_path_is_set():
    settings = Settings(business="examples/ai-studio")
    var = ROOT / "var" / "businesses" / "ai-studio"
    assert settings.knowledge_dir == ROOT / "examples" / "ai-studio" / "knowledge"
    assert settings.project_root == ROOT / "examples" / "ai-studio"
    assert settings.database_url == f"sqlite+aiosqlite:///{var / 'closer.db'}"
    assert settings.tracker_database_url == f"sqlite+aiosqlite:///{var / 'tracker.db'}"
    assert (settings.chroma_path, settings.index_log_dir) == (var / "chroma", var / "index-logs")
    assert Settings(business="examples/ai-studio", chroma_path="/srv/chroma").chroma_path.as_posix() == "/srv/chroma"
    default = Settings(business="")
    assert (default.knowledge_dir, default.chroma_path) == (ROOT / "knowledge", ROOT / "var" / "chroma")


def test_the_scripts_get_the_same_paths():
    script = '. scripts/business.sh && printf \'%s\\n\' "$CLOSER_BUSINESS_DIR" "$CLOSER_MODEL" "$CLOSER_TRACKER_DB"'
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSER_")}
    for environ in ({}, PACK):
        lines = subprocess.run(
            ["bash", "-c", script], cwd=ROOT, env={**env, **environ}, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        expected = [
            business.business_dir(environ),
            business.model_path(environ),
            business.var_dir(environ) / "tracker.db",
        ]
        assert lines == [str(path) for path in expected]
