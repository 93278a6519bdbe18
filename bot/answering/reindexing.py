"""The nightly re-index (the scheduled job ``reindex``, :mod:`bot.scheduling.jobs`): what ``make index`` does,
unattended.

It runs the same commands as an operator would, in a child process so that the console process neither loads
the encoders nor spends its event loop on embedding: ``python -m bot load-knowledge`` when
``knowledge/catalog.csv`` or ``stock.csv`` changed since the last import it made (their SHA-256 is kept in
``<index_log_dir>/catalog-source.sha256``), then ``python -m bot index`` (incremental; its JSON import log
goes to ``index_log_dir`` as always). A command that fails, or that reports rejected rows or failed chunks
(exit status not 0), fails the job, which alerts the managers' chat.
"""

import asyncio
import hashlib
import os
import sys
from datetime import datetime
from pathlib import Path

from bot.core.settings import ROOT, Settings

TIMEOUT_S = 3600.0  # per command
CATALOG_FILES = ("catalog.csv", "stock.csv")
MARKER = "catalog-source.sha256"
TAIL_CHARS = 1500


class ReindexError(RuntimeError):
    """A command of the re-index failed: its exit status (or timeout) and the end of its output."""


def catalog_digest(knowledge_dir: Path) -> str:
    """SHA-256 (hex) over the catalog and stock files of ``knowledge_dir`` (a missing file counts as empty)."""
    digest = hashlib.sha256()
    for name in CATALOG_FILES:
        path = knowledge_dir / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    return digest.hexdigest()


async def _command(arguments: list[str], settings: Settings) -> str:
    """``python -m bot <arguments>`` for ``settings``' DB, knowledge and index; its output (stdout and stderr).
    Raises ReindexError for an exit status other than 0 or after TIMEOUT_S seconds (the child is killed)."""
    env = {
        **os.environ,
        "CLOSER_DATABASE_URL": settings.database_url,
        "CLOSER_KNOWLEDGE_DIR": str(settings.knowledge_dir),
        "CLOSER_CHROMA_PATH": str(settings.chroma_path),
        "CLOSER_INDEX_LOG_DIR": str(settings.index_log_dir),
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *arguments, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(child.communicate(), TIMEOUT_S)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise ReindexError(f"python -m bot {' '.join(arguments)} took over {TIMEOUT_S:.0f} s and was stopped") from None
    text = output.decode(errors="replace").strip()
    if child.returncode != 0:
        raise ReindexError(f"python -m bot {' '.join(arguments)} exited with {child.returncode}: {text[-TAIL_CHARS:]}")
    return text


async def nightly(settings: Settings, now: datetime) -> str:
    """Import the catalog if its files changed, then re-index knowledge/ and the catalog; the summary names what
    was done and the index's own summary lines. Raises ReindexError (nothing is marked imported then)."""
    digest = await asyncio.to_thread(catalog_digest, settings.knowledge_dir)
    marker = settings.index_log_dir / MARKER
    done = []
    if not marker.exists() or marker.read_text().strip() != digest:
        await _command(["load-knowledge"], settings)
        settings.index_log_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(digest + "\n")
        done.append("catalog imported")
    report = await _command(["index"], settings)
    done += [line for line in report.splitlines() if line.startswith(("knowledge", "products"))]
    return "; ".join(done) or "index unchanged"
