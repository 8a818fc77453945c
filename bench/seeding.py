"""Realistic data for the benchmark.

The few users the benchmark signs in as are made through the API (sign-up, then sign-in),
so their password hashes are real PBKDF2 ones. Everything else, conversations and messages
by the hundred thousand, goes straight into SQLite with Python's sqlite3 while the stack
runs (WAL lets it), in the formats Privia writes: lowercase uuid4 text ids, naive UTC
timestamps `YYYY-MM-DD HH:MM:SS.ffffff`, conversations 'active', messages 'complete'
alternating user/assistant, assistant rows with the stub's mode, model and sources.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import ssl
import urllib.request
import uuid
from dataclasses import dataclass, field

PASSWORD = "bench horse battery staple"

WORDS = (
    "the a to and of in is it you that for on with as this be are was have not can your what how at from "
    "or by we an if will about do my more when there which one their time so would all like just make "
    "model answer question server privacy team workspace message token stream latency database request "
    "deploy nginx socket thread worker config report draft summary budget meeting customer release plan "
    "please explain why could should example code error test build cache index query page list detail"
).split()


@dataclass
class Account:
    email: str
    token: str
    user_id: str
    conversations: list[str] = field(default_factory=list)


class API:
    """Just enough of Privia's API to make accounts: JSON over HTTPS to 127.0.0.1."""

    def __init__(self, base_url: str, cafile: str) -> None:
        self.base_url = base_url
        self.context = ssl.create_default_context(cafile=cafile)

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=self.context, timeout=60) as response:
            return json.loads(response.read())

    def account(self, name: str) -> Account:
        email = f"{name}@bench.example"
        self.post("/api/auth/signup", {"email": email, "password": PASSWORD, "full_name": name})
        signed_in = self.post("/api/auth/login", {"username": email, "password": PASSWORD})
        return Account(email, signed_in["access_token"], signed_in["user"]["id"])


class Texts:
    """A few thousand message bodies of realistic lengths, drawn at random (cheap for a million rows)."""

    def __init__(self, rng: random.Random) -> None:
        def text(low: int, high: int) -> str:
            words = rng.choices(WORDS, k=rng.randint(low, high))
            return (" ".join(words).capitalize() + ".")
        self.rng = rng
        self.questions = [text(5, 30) + "?" for _ in range(2000)]
        self.answers = [text(20, 120) for _ in range(3000)]

    def question(self) -> str:
        return self.rng.choice(self.questions)

    def answer(self) -> str:
        return self.rng.choice(self.answers)


def stored(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


class Seeder:
    """Buffers rows and writes them in large transactions."""

    def __init__(self, database_path: str, seed: int = 5) -> None:
        self.db = sqlite3.connect(database_path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.rng = random.Random(seed)
        self.texts = Texts(self.rng)
        self.clock = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=120)
        self.users: list[tuple] = []
        self.conversations: list[tuple] = []
        self.messages: list[tuple] = []
        self.message_count = 0

    def tick(self, seconds: float = 7.0) -> str:
        self.clock += dt.timedelta(seconds=self.rng.uniform(0.5, seconds))
        return stored(self.clock)

    def user(self, index: int) -> str:
        user_id = str(uuid.uuid4())
        # Nobody signs in as a seeded user; the hash only has to have the stored shape.
        self.users.append((user_id, f"seed-{index}@bench.example", f"Seed User {index}",
                           f"pbkdf2_sha256$600000${uuid.uuid4().hex}${uuid.uuid4().hex}", "member", self.tick()))
        return user_id

    def conversation(self, user_id: str, messages: int) -> str:
        """A finished conversation of `messages` messages, questions and answers in turn."""
        conversation_id = str(uuid.uuid4())
        created = self.tick(60)
        first_question = None
        updated = created
        for n in range(messages):
            updated = self.tick(30)
            if n % 2 == 0:
                content = self.texts.question()
                first_question = first_question or content
                self.messages.append((str(uuid.uuid4()), conversation_id, "user", content, updated,
                                      None, None, None, "complete"))
            else:
                self.messages.append((str(uuid.uuid4()), conversation_id, "assistant", self.texts.answer(), updated,
                                      "stub", "[]", "stub", "complete"))
        self.message_count += messages
        title = (first_question or "New conversation")[:40]
        self.conversations.append((conversation_id, user_id, title, created, updated, "active"))
        if len(self.messages) >= 100_000:
            self.flush()
        return conversation_id

    def flush(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(
            "INSERT INTO users (id, email, full_name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            self.users)
        self.db.executemany(
            "INSERT INTO conversations (id, user_id, title, created_at, updated_at, status) VALUES (?, ?, ?, ?, ?, ?)",
            self.conversations)
        self.db.executemany(
            "INSERT INTO messages (id, conversation_id, role, content, timestamp, mode, sources, model, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self.messages)
        self.db.execute("COMMIT")
        self.users, self.conversations, self.messages = [], [], []

    def close(self) -> None:
        self.flush()
        # Fold the WAL back into the database file, as a quiet production database would be.
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


def conversation_set(seeder: Seeder, account: Account, shape: list[int]) -> None:
    """Gives `account` one conversation per entry of `shape` (its message count)."""
    for messages in shape:
        account.conversations.append(seeder.conversation(account.user_id, messages))


def background(seeder: Seeder, users: int, conversations: int, messages: int,
               among: list[tuple[Account, list[int]]] = ()) -> None:
    """Other people's data: `users` users with `conversations` conversations each, holding
    `messages` messages in all (as evenly as they divide). The conversations of `among`
    (account, shape) are spread evenly between them, so a measured user's rows sit
    scattered through the file as they would in a real database."""
    pending = [(account, count) for account, shape in among for count in shape]
    placed = 0
    each, extra = divmod(messages, users * conversations)
    for i in range(users):
        user_id = seeder.user(i)
        for c in range(conversations):
            seeder.conversation(user_id, each + (1 if i * conversations + c < extra else 0))
        due = len(pending) * (i + 1) // users
        while placed < due:
            account, count = pending[placed]
            account.conversations.append(seeder.conversation(account.user_id, count))
            placed += 1
    for account, count in pending[placed:]:
        account.conversations.append(seeder.conversation(account.user_id, count))
