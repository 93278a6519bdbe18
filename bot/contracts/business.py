"""Which business Closer runs, found the same way by both environments and the scripts (standard library only).

``CLOSER_BUSINESS`` names the business's folder, relative to the project root or absolute; unset, it is the project
root itself, the default business. The folder holds ``knowledge/`` (company, pricing, catalog, Markdown knowledge)
and, for the Rasa server, ``domain.yml``, ``config.yml``, ``data/`` and ``tests/stories/``. Each business keeps its
own runtime data under :func:`var_dir` (business DB, Rasa's tracker store, the Chroma index, index logs) and its
own model, :func:`model_path`, so that switching businesses never mixes their customers, catalogs or models; the
secrets under ``var/`` are shared.

``python -m bot.contracts.business`` prints the shell ``export`` lines ``scripts/business.sh`` evaluates:
``CLOSER_BUSINESS_DIR``, ``CLOSER_BUSINESS_NAME``, ``CLOSER_MODEL``, ``CLOSER_VAR`` and ``CLOSER_TRACKER_DB``
(endpoints.yml's tracker store).
"""

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_NAME = "closer"  # the default business's model is models/closer.tar.gz


def business_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The business's folder (absolute): ``CLOSER_BUSINESS`` resolved against the project root, or the root.
    Raises FileNotFoundError when it names no folder with a ``knowledge/`` in it."""
    named = environ.get("CLOSER_BUSINESS") or ""
    folder = (ROOT / named).resolve() if named else ROOT
    if not (folder / "knowledge").is_dir():
        raise FileNotFoundError(f"CLOSER_BUSINESS={named}: {folder} has no knowledge/ folder")
    return folder


def business_name(environ: Mapping[str, str] = os.environ) -> str:
    """``"closer"`` for the default business, else its folder's name (``examples/shop`` → ``"shop"``)."""
    folder = business_dir(environ)
    return DEFAULT_NAME if folder == ROOT else folder.name


def var_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the business's runtime data lives: ``var/`` for the default business, ``var/businesses/<name>/``
    for another."""
    folder = business_dir(environ)
    return ROOT / "var" if folder == ROOT else ROOT / "var" / "businesses" / folder.name


def knowledge_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``CLOSER_KNOWLEDGE_DIR`` when set (tests, one-off imports), else the business's ``knowledge/``."""
    named = environ.get("CLOSER_KNOWLEDGE_DIR")
    return Path(named) if named else business_dir(environ) / "knowledge"


def model_path(environ: Mapping[str, str] = os.environ) -> Path:
    """The business's trained Rasa model, ``models/<business_name>.tar.gz``."""
    return ROOT / "models" / f"{business_name(environ)}.tar.gz"


def shell_exports(environ: Mapping[str, str] = os.environ) -> str:
    """The ``export NAME=value`` lines of the module docstring, values shell-quoted."""
    values = {
        "CLOSER_BUSINESS_DIR": business_dir(environ),
        "CLOSER_BUSINESS_NAME": business_name(environ),
        "CLOSER_MODEL": model_path(environ),
        "CLOSER_VAR": var_dir(environ),
        "CLOSER_TRACKER_DB": var_dir(environ) / "tracker.db",
    }
    return "".join(f"export {name}={shlex.quote(str(value))}\n" for name, value in values.items())


if __name__ == "__main__":
    import sys

    try:
        sys.stdout.write(shell_exports())
    except FileNotFoundError as exc:
        sys.exit(f"error: {exc}")
