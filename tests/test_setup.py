"""Setup stops with a clear message when the Python Rasa needs is missing."""

import shutil
import subprocess

from bot.core.settings import ROOT


def test_setup_says_what_to_install_without_python_3_10(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts")
    for name in ("requirements.txt", "requirements-rasa.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no pyenv, no python3.10 on PATH
    result = subprocess.run(
        ["bash", "scripts/setup.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Python 3.10 is required for .venv-rasa" in result.stderr
    assert "pyenv install 3.10" in result.stderr
    assert not (tmp_path / ".venv-rasa").exists()
