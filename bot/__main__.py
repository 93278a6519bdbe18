"""Command line: ``python -m bot <command>``.

db upgrade                          apply Alembic migrations
import-catalog FILE [--mapping M]   upsert a catalog CSV (exit 1 if any row was rejected)
import-stock FILE                   upsert stock levels (exit 1 if any row was rejected)
load-knowledge                      migrate, then import knowledge/catalog.csv and stock.csv
index [--only knowledge|products]   re-index knowledge/ and the catalog in Chroma (incremental)
crm-worker                          send queued CRM writes to the external CRM (CLOSER_CRM_PROVIDER)
amocrm-authorize CODE               exchange amoCRM's authorisation code for tokens (kept encrypted in the DB)
handback CONVERSATION_ID [--note N] resume the bot after a manager's takeover (Rasa HTTP API)
sqlite-wal FILE                     switch a SQLite file (Rasa's tracker store) to write-ahead logging
rotate-key [--index]                re-encrypt customer data under CLOSER_PII_ACTIVE_KEY; --index also
                                    recomputes the blind indexes under CLOSER_PII_INDEX_KEY
erase --contact ID | --conversation ID [--yes] | --pending | --retention
                                    "forget me": erase a customer everywhere (bot.privacy.erasure; asks first
                                    unless --yes), complete customers' pending requests, or apply
                                    CLOSER_RETENTION_DAYS now
console                             serve the web chat and the manager console (bot.web.app); it runs the
                                    scheduled jobs (bot.scheduling)
jobs [run ID [--now ISO-TIME]]      list the scheduled jobs and their last runs, or run one now (as of
                                    --now: the clock moved, e.g. 2026-12-06T10:00+04:00)
user add --email E --name N --role manager|admin [--password-stdin]
user list | user passwd --email E [--password-stdin] | user disable --email E
                                    manager console users (password asked twice, or one line of stdin)
"""

import argparse
import asyncio
import getpass
import logging
import sqlite3
import sys
from pathlib import Path

from bot.answering import chunking, index
from bot.commerce import catalog
from bot.core import audit, db
from bot.core.business import get_vocabulary
from bot.core.settings import get_settings
from bot.observability import logs
from bot.privacy import keyrotation
from bot.privacy.encryption import DecryptionError, KeyConfigError, get_keyring
from bot.web import accounts


async def _import(kind: str, path: Path, mapping: catalog.ColumnMapping) -> int:
    async with db.session_scope() as session:
        if kind == "catalog":
            report = await catalog.import_catalog(session, path, mapping)
        else:
            report = await catalog.import_stock(session, path)
    for error in report.rejected:
        print(f"rejected {error}", file=sys.stderr)
    print(f"{path}: {report.summary()}")
    return 1 if report.rejected else 0


async def _amocrm_authorize(code: str) -> int:
    from bot.crm.amocrm import AmoCRM
    from bot.crm.base import CRMError

    settings = get_settings()
    try:
        expires_at = await AmoCRM.from_settings(settings).authorize(code)
    except (ValueError, CRMError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.get_engine(settings.database_url).dispose()
    print(f"amoCRM authorised; the access token is valid until {expires_at:%Y-%m-%d %H:%M} UTC and renews itself")
    return 0


async def _index(only: str | None) -> int:
    settings = get_settings()
    batches = []
    if only != index.PRODUCTS:
        batches.append(
            (
                index.KNOWLEDGE,
                chunking.knowledge_chunks(
                    settings.knowledge_dir, settings.chunk_max_chars, settings.chunk_overlap_chars
                ),
            )
        )
    if only != index.KNOWLEDGE:
        async with db.session_scope() as session:
            batches.append(
                (index.PRODUCTS, await chunking.catalog_chunks(session, (await get_vocabulary(session)).labels))
            )
    status = 0
    for name, chunks in batches:
        report = await asyncio.to_thread(index.sync, index.get_client(), name, chunks)
        for failure in report.failed:
            print(f"failed {failure['id']}: {failure['reason']}", file=sys.stderr)
        print(report.summary())
        status = status or (1 if report.failed else 0)
    return status


async def _hand_back(conversation_id: str, note: str | None) -> int:
    from bot.core.rasa import RasaClient, RasaError
    from bot.handoff.escalation import hand_back

    settings = get_settings()
    try:
        async with RasaClient(settings.rasa_url, settings) as rasa, db.session_scope(settings.database_url) as session:
            closed = await hand_back(session, conversation_id, rasa, note=(note.strip() or None) if note else None)
    except RasaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{conversation_id}: bot resumed, {closed} escalation(s) resolved")
    return 0


async def _jobs(args: argparse.Namespace) -> int:
    """The ``jobs`` command: 0, or 1 when the job run failed, 2 (stderr) for an unknown job or a bad time."""
    from datetime import UTC, datetime

    from bot.scheduling import jobs, runner

    settings = get_settings()
    try:
        if args.action == "run":
            now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
            if now.tzinfo is None:
                raise ValueError(f"--now {args.now!r} needs a UTC offset, e.g. {args.now}+04:00")
            run = await runner.run_job(args.job, now.astimezone(UTC), settings)
            print(f"{run.job_id}: {run.outcome} in {run.duration_s:.2f} s: {run.detail}")
            return 0 if run.outcome == "ok" else 1
        for spec in jobs.JOBS:
            print(f"{spec.id:<22} {spec.title:<28} {spec.trigger(settings)}")
        for run in await runner.last_runs(settings.database_url, 20):
            print(f"{run.started_at:%Y-%m-%d %H:%M:%S} {run.job_id:<22} {run.outcome:<8} {run.detail or ''}")
        return 0
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.get_engine().dispose()


async def _rotate_key(reindex: bool) -> int:
    engine = db.get_engine()
    try:
        for field, count in (await keyrotation.rotate(engine, get_keyring())).items():
            print(f"{field}: {count} re-encrypted under key {get_keyring().active!r}")
        if reindex:
            print(f"contacts: blind indexes of {await keyrotation.reindex(engine)} contact(s) recomputed")
    finally:
        await engine.dispose()
    return 0


async def _erase(args: argparse.Namespace) -> int:
    """The ``erase`` command: 0 when done, 1 when declined or a tracker rewrite is still pending, 2 (stderr)
    for an unknown contact."""
    from sqlalchemy.exc import DBAPIError

    from bot.privacy import erasure

    settings = get_settings()
    try:
        if args.pending:
            report = await erasure.complete_pending()
        elif args.retention:
            report = await erasure.apply_retention(settings.retention_days)
        else:
            what = f"contact {args.contact}" if args.contact is not None else f"conversation {args.conversation}"
            try:
                prompt = f"Erase {what} and everything about the customer? Type 'erase': "
                confirmed = args.yes or (await asyncio.to_thread(input, prompt)).strip() == "erase"
            except EOFError:
                confirmed = False
            if not confirmed:
                print("nothing erased")
                return 1
            report = await erasure.erase(contact_id=args.contact, conversation_id=args.conversation, via="cli")
    except (erasure.NothingToErase, DBAPIError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.get_engine().dispose()
    print(report.summary())
    if report.counts["crm_external_records"]:
        print("note: the external CRM keeps its records of this customer; delete them there", file=sys.stderr)
    return 1 if report.pending else 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise accounts.AccountError("the two passwords differ")
    return password


async def _user(args: argparse.Namespace) -> int:
    """The ``user`` sub-commands (changes are written to the audit log with no actor); 2 with a message on
    stderr for bad input (accounts.AccountError)."""
    try:
        password = _read_password(args.password_stdin) if args.action in ("add", "passwd") else ""
        async with db.session_scope() as session:
            if args.action == "add":
                user = await accounts.create_user(session, args.email, args.name, args.role, password)
                audit.record(session, None, "user.create", "user", user.id, email=user.email, role=user.role)
                print(f"created {user.email} ({user.role})")
            elif args.action == "passwd":
                user = await accounts.set_password(session, args.email, password)
                audit.record(session, None, "user.password", "user", user.id, email=user.email)
                print(f"new password for {user.email}")
            elif args.action == "disable":
                user = await accounts.disable(session, args.email)
                audit.record(session, None, "user.disable", "user", user.id, email=user.email)
                print(f"disabled {user.email}")
            else:
                for user in await accounts.list_users(session):
                    last = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
                    status = "disabled" if user.disabled else "active"
                    print(f"{user.email}\t{user.name}\t{user.role}\t{status}\tlast sign-in {last}")
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.get_engine().dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dbp = sub.add_parser("db", help="database schema")
    dbp.add_argument("action", choices=["upgrade"])
    imp = sub.add_parser("import-catalog", help="upsert a catalog CSV into products")
    imp.add_argument("file", type=Path)
    imp.add_argument("--mapping", type=Path, help="column mapping YAML (default: Closer's own columns)")
    stk = sub.add_parser("import-stock", help="upsert a stock CSV (sku, warehouse, quantity)")
    stk.add_argument("file", type=Path)
    sub.add_parser("load-knowledge", help="migrate and import knowledge/catalog.csv and stock.csv")
    idx = sub.add_parser("index", help="re-index knowledge/ Markdown and catalog products in Chroma (incremental)")
    idx.add_argument("--only", choices=[index.KNOWLEDGE, index.PRODUCTS], help="one collection only")
    sub.add_parser("crm-worker", help="deliver queued writes to the external CRM every 15 s, until stopped")
    amo = sub.add_parser("amocrm-authorize", help="exchange amoCRM's authorisation code for tokens (kept encrypted)")
    amo.add_argument("code", help="the code amoCRM shows once the integration is installed (valid 20 minutes)")
    back = sub.add_parser("handback", help="resume the bot in a conversation a manager took over")
    back.add_argument("conversation_id")
    back.add_argument("--note", help="how it was resolved (kept on the escalations and on the customer's open deal)")
    wal = sub.add_parser("sqlite-wal", help="switch a SQLite file (Rasa's tracker store) to write-ahead logging")
    wal.add_argument("file", type=Path)
    sub.add_parser("console", help="serve the web chat and the manager console on CLOSER_CONSOLE_PORT (8000)")
    jobs = sub.add_parser("jobs", help="list the scheduled jobs and their last runs, or run one now")
    jobs.add_argument("action", nargs="?", choices=["list", "run"], default="list")
    jobs.add_argument("job", nargs="?", help="the job to run (python -m bot jobs lists them)")
    jobs.add_argument("--now", help="run as of this time (ISO 8601 with a UTC offset): the clock moved")
    era = sub.add_parser("erase", help='"forget me": erase a customer, complete pending requests, or apply retention')
    which = era.add_mutually_exclusive_group(required=True)
    which.add_argument("--contact", type=int, help="a contact id (the console's /console/contacts/<id>)")
    which.add_argument("--conversation", help="a conversation id (Rasa's sender id, e.g. telegram-123)")
    which.add_argument("--pending", action="store_true", help="complete customers' pending erasure requests")
    which.add_argument(
        "--retention", action="store_true", help="anonymise conversations older than CLOSER_RETENTION_DAYS"
    )
    era.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rot = sub.add_parser("rotate-key", help="re-encrypt customer data under CLOSER_PII_ACTIVE_KEY (idempotent)")
    rot.add_argument(
        "--index", action="store_true", help="also recompute the contacts' blind indexes under CLOSER_PII_INDEX_KEY"
    )
    usr = sub.add_parser("user", help="manager console users").add_subparsers(dest="action", required=True)
    add = usr.add_parser("add", help="create a console user")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=accounts.ROLES)
    usr.add_parser("list", help="list console users")
    pwd = usr.add_parser("passwd", help="set a console user's password (ends their sessions)")
    pwd.add_argument("--email", required=True)
    for command in (add, pwd):
        command.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    off = usr.add_parser("disable", help="disable a console user (ends their sessions)")
    off.add_argument("--email", required=True)
    args = parser.parse_args(argv)
    logs.configure(get_settings().log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a Chroma server's every request otherwise

    try:
        if args.command != "sqlite-wal":
            get_keyring()  # a missing or malformed PII key stops every command that reads the business DB here
        if args.command == "db":
            db.upgrade()
            return 0
        if args.command == "import-catalog":
            mapping = catalog.ColumnMapping.load(args.mapping) if args.mapping else catalog.DEFAULT_MAPPING
            return asyncio.run(_import("catalog", args.file, mapping))
        if args.command == "import-stock":
            return asyncio.run(_import("stock", args.file, catalog.DEFAULT_MAPPING))
        if args.command == "index":
            return asyncio.run(_index(args.only))
        if args.command == "amocrm-authorize":
            db.upgrade()
            return asyncio.run(_amocrm_authorize(args.code))
        if args.command == "crm-worker":
            from bot.crm import outbox, registry

            settings = get_settings()
            asyncio.run(
                outbox.run_outbox_worker(
                    registry.provider_from_settings(settings),
                    database_url=settings.database_url,
                    retry_max_s=settings.crm_retry_max_s,
                )
            )
            return 0
        if args.command == "handback":
            return asyncio.run(_hand_back(args.conversation_id, args.note))
        if args.command == "user":
            return asyncio.run(_user(args))
        if args.command == "sqlite-wal":
            db.use_wal(args.file)
            return 0
        if args.command == "erase":
            return asyncio.run(_erase(args))
        if args.command == "jobs":
            if args.action == "run" and not args.job:
                parser.error("jobs run needs a job id")
            return asyncio.run(_jobs(args))
        if args.command == "rotate-key":
            return asyncio.run(_rotate_key(args.index))
        if args.command == "load-knowledge":
            db.upgrade()
            knowledge, status = get_settings().knowledge_dir, 0
            for kind in ("catalog", "stock"):  # a business that sells services may have neither file
                path = knowledge / f"{kind}.csv"
                if path.is_file():
                    status = asyncio.run(_import(kind, path, catalog.DEFAULT_MAPPING)) or status
                else:
                    print(f"{path}: none, nothing to import")
            return status
        from bot.web.app import run

        run(get_settings())
        return 0
    except (catalog.MappingError, KeyConfigError, DecryptionError, OSError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
