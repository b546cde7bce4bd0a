"""The agent dashboard at scale: server time of its pages against the same queries run bare.

    python bench/dashboard.py [--database-url postgres://postgres@127.0.0.1:5432/benchdash]
                              [--tickets 100000] [--messages-per-ticket 10] [--big-tickets 40]
                              [--repeat 25] [--reseed]

Seeds a dedicated PostgreSQL database (created and migrated here; the seed is reused while its
size matches) with ``--tickets`` tickets and about ``tickets x messages-per-ticket`` messages in
three organizations: contacts, tags, SLA policies and due times, assignees, notes, an audit log,
and ``--big-tickets`` tickets of 200 messages. Texts are sentences of the demo help centre and
customers' questions, so full-text search has real words to work through. Bulk COPY in batches;
the GIN index is built after the load.

Then, for the inbox (the default view and three filters), a search and a ticket page with 200
messages, in the same run and interleaved: (page) the page through ``django.test.Client`` logged
in as an agent of the largest organization, server time = the whole response (server-rendered);
(orm) the selectors the page uses, materialised, with what a row shows touched; (sql) the SQL
the ORM run sent, replayed on a bare cursor. p50/p95 and query counts of each, the ratios
page/orm and orm/sql (the platform's overhead), and the goal (p95 <= 150 ms per page). The page
column is left out while the dashboard's URLs do not exist yet. Last, EXPLAIN (ANALYZE) of the
search's queries: whether the GIN index ``ticket_search_fts`` is used.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from _setup import REPO

ORGS = [("bench-acme", "Acme Home", 0.7), ("bench-globex", "Globex", 0.2), ("bench-initech", "Initech", 0.1)]
AGENTS_PER_ORG = 10
TAGS = [
    "billing", "refund", "wifi", "setup", "bug", "feature request", "vip", "hardware", "app", "account",
    "firmware", "returns", "privacy", "voice", "automation", "sensor", "bulb", "subscription", "urgent", "follow-up",
]  # fmt: skip
SLA = {"urgent": (15, 240), "high": (60, 480), "normal": (240, 1440), "low": (1440, 4320)}
STATUSES = [("new", 0.10), ("open", 0.20), ("pending", 0.10), ("resolved", 0.40), ("closed", 0.20)]
PRIORITIES = [("low", 0.2), ("normal", 0.55), ("high", 0.18), ("urgent", 0.07)]
CHANNELS = [("widget", 0.8), ("api", 0.15), ("email", 0.05)]
CONVERSATION_STATUS = {"new": "waiting_human", "open": "human", "pending": "human", "resolved": "resolved", "closed": "closed"}  # fmt: skip
PRODUCTS = ["hub", "bulb", "motion sensor", "dimmer switch", "app", "subscription", "account", "thermostat", "plug"]
PROBLEMS = [
    "keeps going offline", "blinks amber", "will not pair", "shows error E42", "stopped responding",
    "was charged twice", "lost its schedule", "does not turn on", "drops the wifi every night",
    "will not update its firmware", "asks for a password I never set", "is slow to react",
]  # fmt: skip
OPENERS = ["Hi,", "Hello,", "Hey team,", "Good morning,", "Help!", "Hi there,", ""]
ASKS = [
    "What should I do?", "Can you help?", "Is this a known issue?", "How do I fix this?",
    "I want a refund.", "Can someone call me?", "Please advise.", "I already tried restarting it.",
]  # fmt: skip

PAGE_SIZE = 25


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def weighted(choices: list[tuple[str, float]], rng: random.Random) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


# --- the database --------------------------------------------------------------------------------


def database_ensure(url: str) -> None:
    """Create the database of ``url`` if it does not exist (connecting to ``postgres``)."""
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def django_postgres(url: str) -> None:
    """Configure Django against ``url`` as production runs it (DEBUG off) and migrate."""
    for var in ("REDIS_URL", "QDRANT_URL"):
        os.environ.pop(var, None)
    os.environ.update(
        DATABASE_URL=url,
        DEBUG="0",
        SECRET_KEY="bench-dashboard-only",
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        CELERY_TASK_ALWAYS_EAGER="1",
        HF_HUB_OFFLINE="1",
        RESOLVO_DATA_DIR=tempfile.mkdtemp(prefix="resolvo-bench-dashboard-"),
        DJANGO_SETTINGS_MODULE="resolvo.settings",
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


# --- seeding -------------------------------------------------------------------------------------


def sentences() -> list[str]:
    """Sentences of the demo help centre: what assistants and agents say."""
    out: list[str] = []
    for path in sorted((REPO / "demo" / "helpcentre").glob("*.md")):
        text = re.sub(r"[#*`>\[\]()|_]", " ", path.read_text())
        for part in re.split(r"(?<=[.!?])\s+|\n+", text):
            part = " ".join(part.split())
            if 25 <= len(part) <= 240:
                out.append(part)
    return out


class Texts:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.help = sentences()

    def question(self) -> str:
        r = self.rng
        return " ".join(
            w for w in (r.choice(OPENERS), f"my {r.choice(PRODUCTS)} {r.choice(PROBLEMS)}.", r.choice(ASKS)) if w
        )

    def customer(self) -> str:
        r = self.rng
        if r.random() < 0.5:
            return self.question()
        return f"{r.choice(OPENERS)} {r.choice(self.help)} {r.choice(ASKS)}".strip()

    def answer(self) -> str:
        return " ".join(self.rng.sample(self.help, self.rng.randint(1, 3)))


class Copier:
    """COPY rows of one model: the columns given, every other column its field's default."""

    def __init__(self, model: Any, columns: list[str]) -> None:
        self.table = model._meta.db_table
        fields = [f for f in model._meta.concrete_fields]
        given = set(columns)
        self.rest: list[tuple[str, Any]] = []
        for f in fields:
            if f.column in given or f.primary_key:
                continue
            default = f.get_default()
            if isinstance(default, (list, dict)):
                default = json.dumps(default)
            self.rest.append((f.column, default))
        self.columns = columns + [c for c, _ in self.rest]
        self.tail = tuple(v for _, v in self.rest)
        self.rows: list[tuple[Any, ...]] = []

    def add(self, *values: Any) -> None:
        self.rows.append(values + self.tail)

    def flush(self, cursor: Any) -> int:
        n = len(self.rows)
        cols = ", ".join(f'"{c}"' for c in self.columns)
        with cursor.copy(f'COPY "{self.table}" ({cols}) FROM STDIN') as copy:
            for row in self.rows:
                copy.write_row(row)
        self.rows = []
        return n


def seed_key(args: argparse.Namespace) -> str:
    return f"seed:{args.tickets}x{args.messages_per_ticket}+{args.big_tickets}big:v1"


def seed_present(args: argparse.Namespace) -> bool:
    from resolvo.organizations.models import Organization

    first = Organization.objects.filter(slug=ORGS[0][0]).first()
    return first is not None and first.name.endswith(f"[{seed_key(args)}]")


def seed(args: argparse.Namespace) -> dict[str, float]:
    """Empty the bench database and fill it; the counts and how long each part took."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from resolvo.conversations.models import Conversation, Message
    from resolvo.organizations.models import Membership, Organization
    from resolvo.tickets.models import Contact, SLAPolicy, Tag, Ticket, TicketChange, TicketNote

    rng = random.Random(42)
    texts = Texts(rng)
    User = get_user_model()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE organizations_organization, auth_user, django_session RESTART IDENTITY CASCADE")
        cursor.execute("DROP INDEX IF EXISTS ticket_search_fts")
    timings["truncate"] = time.perf_counter() - t0

    now = datetime.now(UTC)
    orgs, agents, tags = [], {}, {}
    password = make_password(None)
    for slug, name, _ in ORGS:
        org = Organization.objects.create(slug=slug, name=name, auto_assign=True)
        orgs.append(org)
        users = User.objects.bulk_create(
            [
                User(username=f"{slug}-agent{i}", password=password, first_name=f"Agent{i}")
                for i in range(AGENTS_PER_ORG)
            ]
        )
        Membership.objects.bulk_create([Membership(organization=org, user=u) for u in users])
        agents[org.pk] = [u.pk for u in users]
        tags[org.pk] = [t.pk for t in Tag.objects.bulk_create([Tag(organization=org, name=n) for n in TAGS])]
        SLAPolicy.objects.bulk_create(
            [SLAPolicy(organization=org, priority=p, first_response_minutes=f, resolution_minutes=r) for p, (f, r) in SLA.items()]
        )  # fmt: skip

    # Contacts: about one per two tickets, half of them verified users of the host site.
    contact_ids: dict[int, list[int]] = {}
    contacts = Copier(
        Contact, ["id", "organization_id", "external_id", "visitor_id", "name", "email", "created_at", "updated_at"]
    )
    next_id = 1
    for org, (_, _, share) in zip(orgs, ORGS, strict=True):
        contact_ids[org.pk] = []
        for n in range(max(1, int(args.tickets * share / 2))):
            verified = n % 2 == 0
            first = rng.choice(["Sam", "Alex", "Priya", "Jon", "Mia", "Luca", "Ana", "Kofi", "Yuki", "Eva"])
            when = now - timedelta(days=rng.uniform(0, 200))
            contacts.add(
                next_id, org.pk, f"user-{n}" if verified else "", f"v-{org.pk}-{n}",
                f"{first} {n}" if verified else "", f"{first.lower()}{n}@example.com" if verified else "", when, when,
            )  # fmt: skip
            contact_ids[org.pk].append(next_id)
            next_id += 1

    with connection.cursor() as cursor:
        contacts.flush(cursor)

    big_ids = set(rng.sample(range(1, int(args.tickets * ORGS[0][2]) + 1), min(args.big_tickets, args.tickets)))
    rest = max(1, args.tickets - len(big_ids))
    mean = max(2.0, (args.tickets * args.messages_per_ticket - 200 * len(big_ids)) / rest)

    conversations = Copier(
        Conversation,
        ["id", "organization_id", "visitor_id", "contact_id", "channel", "status", "created_at", "updated_at"],
    )
    tickets = Copier(
        Ticket,
        ["id", "organization_id", "conversation_id", "contact_id", "status", "priority", "channel", "assignee_id",
         "subject", "summary", "handoff_trigger", "first_response_due", "resolution_due", "first_response_at",
         "resolved_at", "search_text", "created_at", "updated_at"],
    )  # fmt: skip
    messages = Copier(Message, ["id", "conversation_id", "role", "text", "author_id", "created_at"])
    ticket_tags = Copier(Ticket.tags.through, ["ticket_id", "tag_id"])
    changes = Copier(TicketChange, ["ticket_id", "actor_id", "field", "before", "after", "created_at"])
    notes = Copier(TicketNote, ["ticket_id", "author_id", "text", "created_at"])

    timings["generate"] = timings["copy"] = 0.0
    counts = {"tickets": 0, "messages": 0}
    message_id = 1
    ticket_id = 1
    batch = 2000
    acme_count = int(args.tickets * ORGS[0][2])
    plan = [orgs[0]] * acme_count
    for org, (_, _, share) in zip(orgs[1:], ORGS[1:], strict=True):
        plan += [org] * int(args.tickets * share)
    plan += [orgs[0]] * (args.tickets - len(plan))
    last_report = time.perf_counter()
    for start in range(0, len(plan), batch):
        g0 = time.perf_counter()
        for org in plan[start : start + batch]:
            status = weighted(STATUSES, rng)
            priority = weighted(PRIORITIES, rng)
            is_open = status in ("new", "open", "pending")
            created = now - timedelta(minutes=rng.uniform(5, 14 * 24 * 60 if is_open else 120 * 24 * 60))
            n_messages = 200 if ticket_id in big_ids else max(2, int(rng.uniform(2, 2 * mean - 2) + 0.5))
            assignee = rng.choice(agents[org.pk]) if (status != "new" or rng.random() < 0.4) else None
            if status != "new" and rng.random() < 0.3:
                assignee = assignee or rng.choice(agents[org.pk])
            first, resolve = SLA[priority]
            first_due = created + timedelta(minutes=first)
            resolution_due = created + timedelta(minutes=resolve)
            first_at = None if status == "new" else created + timedelta(minutes=rng.expovariate(1 / max(1, first)))
            resolved_at = created + timedelta(minutes=rng.uniform(resolve / 4, resolve * 1.5)) if not is_open else None

            step = (((resolved_at or now) - created) / (n_messages + 1)) if n_messages else timedelta(0)
            texts_here = []
            when = created
            for m in range(n_messages):
                when = when + step
                if m == 0:
                    role, text = "customer", texts.question()
                elif m == 2:
                    role, text = "system", "I've passed your question to our support team. A person will reply here."
                elif m % 2 == 0:
                    role, text = "customer", texts.customer()
                else:
                    role = "assistant" if m < 2 else "agent"
                    text = texts.answer()
                author = (assignee or rng.choice(agents[org.pk])) if role == "agent" else None
                messages.add(message_id, ticket_id, role, text, author, when)
                texts_here.append(text)
                message_id += 1
            subject = texts_here[0].splitlines()[0][:200]
            search_text = (subject + "\n" + "\n".join(texts_here))[-200_000:]
            channel = weighted(CHANNELS, rng)
            contact = rng.choice(contact_ids[org.pk])
            conversations.add(
                ticket_id, org.pk, f"v-{org.pk}-{contact}", "", "api" if channel == "api" else "widget",
                CONVERSATION_STATUS[status], created, when,
            )  # fmt: skip
            tickets.add(
                ticket_id, org.pk, ticket_id, contact, status, priority, channel, assignee, subject,
                "The customer asked to talk to a person.", "customer_asked", first_due, resolution_due, first_at,
                resolved_at, search_text, created, when,
            )  # fmt: skip
            for tag in rng.sample(tags[org.pk], rng.choice([0, 0, 1, 1, 1, 2, 2, 3])):
                ticket_tags.add(ticket_id, tag)
            changes.add(ticket_id, None, "created", "", "customer_asked", created)
            if assignee:
                changes.add(ticket_id, None, "assignee", "", f"agent{assignee}", created)
            if status != "new":
                changes.add(ticket_id, assignee, "status", "new", status, first_at or created)
            if rng.random() < 0.25:
                notes.add(ticket_id, assignee or rng.choice(agents[org.pk]), texts.answer(), when)
            ticket_id += 1
        g1 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
            for copier in (conversations, tickets, messages, ticket_tags, changes, notes):
                if copier is messages:
                    counts["messages"] += len(copier.rows)
                elif copier is tickets:
                    counts["tickets"] += len(copier.rows)
                copier.flush(cursor)
        timings["generate"] += g1 - g0
        timings["copy"] += time.perf_counter() - g1
        if time.perf_counter() - last_report > 15:
            last_report = time.perf_counter()
            print(f"  seeded {counts['tickets']:,} tickets, {counts['messages']:,} messages", flush=True)

    with connection.cursor() as cursor:
        for model in (Contact, Conversation, Ticket, Message, TicketChange, TicketNote):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM \"{table}\"))"
            )
        t1 = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(
            "CREATE INDEX ticket_search_fts ON tickets_ticket "
            "USING gin (to_tsvector('simple'::regconfig, COALESCE(search_text, '')))"
        )
        timings["gin index"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        timings["analyze"] = time.perf_counter() - t2
    Organization.objects.filter(pk=orgs[0].pk).update(name=f"{ORGS[0][1]} [{seed_key(args)}]")
    timings["total"] = time.perf_counter() - t0
    return {**timings, **{k: float(v) for k, v in counts.items()}, "big": float(len(big_ids))}


# --- the cases -----------------------------------------------------------------------------------


class Case:
    def __init__(self, name: str, url: str, orm: Callable[[], Any]) -> None:
        self.name, self.url, self.orm = name, url, orm
        self.sql: list[str] = []
        self.times: dict[str, list[float]] = {"page": [], "orm": [], "sql": []}
        self.queries: dict[str, int] = {}
        self.status = 0


def inbox_orm(org: Any, user: Any, params: dict[str, str]) -> Callable[[], Any]:
    from django.core.paginator import Paginator

    from resolvo.tickets import selectors

    def run() -> Any:
        filters = selectors.InboxFilter.from_query(params)
        found = selectors.tickets_for_inbox(organization=org, user=user, filters=filters)
        page = Paginator(found, PAGE_SIZE).get_page(params.get("page", 1))
        rows = [
            (t.pk, t.subject, t.contact.display_name if t.contact else "", t.assignee.get_username() if t.assignee else "",
             [tag.name for tag in t.tags.all()], t.status, t.priority, t.first_response_due, t.updated_at)
            for t in page
        ]  # fmt: skip
        counts = selectors.inbox_counts(organization=org, user=user)
        return rows, counts, page.paginator.count

    return run


def ticket_orm(user: Any, ticket_id: int) -> Callable[[], Any]:
    from resolvo.tickets import selectors

    def run() -> Any:
        ticket = selectors.ticket_for_member(user=user, ticket_id=ticket_id)
        thread = [
            (m.role, m.text, m.author.get_username() if m.author else "")
            for m in selectors.ticket_thread(ticket=ticket)
        ]
        notes = [(n.text, n.author.get_username() if n.author else "") for n in selectors.ticket_notes(ticket=ticket)]
        log = [(c.field, c.actor.get_username() if c.actor else "") for c in selectors.ticket_changes(ticket=ticket)]
        tags = [t.name for t in ticket.tags.all()]
        return ticket.contact, ticket.assignee, thread, notes, log, tags

    return run


def pages_exist() -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve("/app/inbox/")
        resolve("/app/tickets/1/")
    except Resolver404:
        return False
    return True


def measure(cases: list[Case], *, user: Any, repeat: int, with_pages: bool) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(raise_request_exception=False)
    client.force_login(user)
    for case in cases:
        with CaptureQueriesContext(connection) as captured:
            case.orm()
        case.sql = [q["sql"] for q in captured]
        case.queries["orm"] = case.queries["sql"] = len(case.sql)
        if with_pages:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(case.url)
            case.status = response.status_code
            case.queries["page"] = len(captured)

    def replay(statements: list[str]) -> None:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                cursor.fetchall()

    for i in range(repeat + 2):  # two warm-up rounds, then the timed ones, the three interleaved
        for case in cases:
            runs: list[tuple[str, Callable[[], Any]]] = [("orm", case.orm), ("sql", lambda c=case: replay(c.sql))]
            if with_pages and case.status == 200:
                runs.insert(0, ("page", lambda c=case: client.get(c.url).content))
            for kind, fn in runs:
                t0 = time.perf_counter()
                fn()
                if i >= 2:
                    case.times[kind].append((time.perf_counter() - t0) * 1000)


def explain(statements: list[str], label: str) -> bool:
    """EXPLAIN (ANALYZE, BUFFERS) summaries; whether the GIN index was used."""
    from django.db import connection

    used = False
    for statement in statements:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
            plan = [row[0] for row in cursor.fetchall()]
        head = " ".join(statement.split())[:110]
        print(f"\n  {label}: {head}...")
        for line in plan:
            text = line.strip()
            keep = ("Scan" in text or "Limit" in text or "Sort" in text or "Aggregate" in text or "Join" in text
                    or text.startswith(("Execution Time", "Planning Time", "Rows Removed", "Heap Blocks")))  # fmt: skip
            if keep:
                print(f"    {line[:150]}")
        used = used or any("ticket_search_fts" in line for line in plan)
    return used


def report(cases: list[Case], with_pages: bool) -> None:
    print(f"\n{'case':<34} {'queries':>13}  {'page p50':>8} {'p95':>7}  {'orm p50':>7} {'p95':>7}  "
          f"{'sql p50':>7} {'p95':>7}  {'page/orm':>8} {'orm/sql':>7}  goal")  # fmt: skip
    print(
        f"{'':<34} {'page/orm':>13}  {'ms':>8} {'ms':>7}  {'ms':>7} {'ms':>7}  {'ms':>7} {'ms':>7}  {'p50':>8} {'p50':>7}  p95<=150"
    )
    for c in cases:
        page, orm, sql = c.times["page"], c.times["orm"], c.times["sql"]
        queries = f"{c.queries.get('page', '-')}/{c.queries['orm']}"
        if with_pages and c.status != 200:
            queries = f"HTTP {c.status}/{c.queries['orm']}"
        ratio = f"{pct(page, 50) / pct(orm, 50):8.2f}" if page else f"{'-':>8}"
        worst = pct(page, 95) if page else pct(orm, 95)
        goal = ("ok" if worst <= 150 else "MISSED") + ("" if page else " (orm)")
        page_cols = f"{pct(page, 50):8.1f} {pct(page, 95):7.1f}" if page else f"{'-':>8} {'-':>7}"
        print(
            f"{c.name:<34} {queries:>13}  {page_cols}  {pct(orm, 50):7.1f} {pct(orm, 95):7.1f}  "
            f"{pct(sql, 50):7.1f} {pct(sql, 95):7.1f}  {ratio} {pct(orm, 50) / pct(sql, 50):7.2f}  {goal}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/benchdash")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--messages-per-ticket", type=int, default=10)
    parser.add_argument("--big-tickets", type=int, default=40, help="tickets with 200 messages")
    parser.add_argument("--repeat", type=int, default=25, help="timed runs of each case")
    parser.add_argument("--search", default="amber", help="the search case's query (websearch syntax)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the seed matches")
    args = parser.parse_args()

    database_ensure(args.database_url)
    django_postgres(args.database_url)
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from resolvo.conversations.models import Message
    from resolvo.organizations.models import Organization
    from resolvo.tickets.models import Tag, Ticket

    if args.reseed or not seed_present(args):
        print(f"seeding {args.tickets:,} tickets x ~{args.messages_per_ticket} messages into {args.database_url} ...")
        took = seed(args)
        print(
            f"seeded {int(took['tickets']):,} tickets, {int(took['messages']):,} messages "
            f"({int(took['big'])} tickets of 200) in {took['total']:.0f} s: generate {took['generate']:.0f} s, "
            f"COPY {took['copy']:.0f} s, GIN index {took['gin index']:.0f} s, analyze {took['analyze']:.0f} s"
        )
    else:
        print(f"reusing the seed in {args.database_url} ({seed_key(args)})")

    org = Organization.objects.get(slug=ORGS[0][0])
    user = get_user_model().objects.get(username=f"{ORGS[0][0]}-agent0")
    n_tickets, n_messages = Ticket.objects.count(), Message.objects.count()
    org_tickets = Ticket.objects.filter(organization=org).count()
    big = list(
        Ticket.objects.filter(organization=org)
        .annotate(n=Count("conversation__messages"))
        .filter(n__gte=200)
        .values_list("pk", flat=True)[:5]
    )
    tag = Tag.objects.filter(organization=org, name="billing").get()
    print(
        f"database: {n_tickets:,} tickets, {n_messages:,} messages; {org.name}: {org_tickets:,} tickets; agent {user}"
    )

    inbox_cases = [
        ("inbox: default (open, updated)", {}),
        ("inbox: assigned to me", {"assignee": "me"}),
        ("inbox: tag billing, all, priority", {"tag": tag.name, "status": "all", "sort": "priority"}),
        ("inbox: SLA breached, due", {"sla": "breached", "sort": "due"}),
        (f"search: {args.search!r} (all)", {"q": args.search, "status": "all"}),
    ]
    from urllib.parse import urlencode

    cases = [Case(name, f"/app/inbox/?{urlencode(p)}", inbox_orm(org, user, p)) for name, p in inbox_cases]
    for n, pk in enumerate(big[:3]):
        cases.append(Case(f"ticket page, 200 messages #{n + 1}", f"/app/tickets/{pk}/", ticket_orm(user, pk)))

    with_pages = pages_exist()
    if not with_pages:
        print("the dashboard's URLs (/app/inbox/, /app/tickets/<id>/) do not exist yet: ORM and SQL only")
    measure(cases, user=user, repeat=args.repeat, with_pages=with_pages)
    report(cases, with_pages)

    search = next(c for c in cases if c.name.startswith("search"))
    fts = [s for s in search.sql if "to_tsvector" in s]
    used = explain(fts, "search")
    print(f"\n  GIN index ticket_search_fts used by the search: {'yes' if used else 'NO'}")


if __name__ == "__main__":
    main()
