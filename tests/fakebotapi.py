"""A fake Telegram Bot API server on 127.0.0.1 for tests: real HTTP, users, faults, rate limits."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


def fake_token(bot_id: int, fill: str = "a") -> str:
    """A token of Telegram's shape (bot id, colon, 30+ characters), built at run time so that
    no literal in the repository looks like a real credential to secret scanners."""
    return f"{bot_id}:FAKE-not-a-real-token-{fill * 16}"


BOT_USER = {"id": 1000, "is_bot": True, "first_name": "AlertBot", "username": "alertbot_test_bot"}
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
ALLOWED_TAGS |= {"blockquote", "tg-spoiler", "span"}
_FULL_INFO = {"accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": {}}
_FULL_INFO["accepted_gift_types"] = dict.fromkeys(
    [
        "unlimited_gifts",
        "limited_gifts",
        "unique_gifts",
        "premium_subscription",
        "gifts_from_channels",
    ],
    False,
)
_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>\w+)$")
# Form-encoded values arrive as raw strings for str parameters and JSON for everything else.
_JSON_KEYS = {"chat_id", "message_id", "offset", "timeout", "limit", "user_id", "reply_markup"}
_JSON_KEYS |= {"link_preview_options", "entities", "allowed_updates", "commands", "scope"}
_JSON_KEYS |= {"show_alert", "disable_notification", "disable_web_page_preview", "cache_time"}
_JSON_KEYS |= {"drop_pending_updates", "protect_content", "reply_parameters"}


@dataclass
class Sent:
    """One message the bot sent (and its latest edit)."""

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None
    reply_markup: dict | None = None
    link_preview_options: dict | None = None
    edits: int = 0

    @property
    def plain(self) -> str:
        """The text as the user sees it (HTML tags removed)."""
        return _strip_html(self.text) if self.parse_mode == "HTML" else self.text

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


@dataclass
class Fault:
    """An injected error: which answer, for which chat/method, how many times."""

    # 429 | 403 | parse | chat_not_found | migrate | 500 | hang | raw (status and body as given),
    # or one of ACCEPTING (the
    # message is delivered, then the answer is unusable) | 502_echo (a proxy's page, token in it)
    kind: str
    chat_id: int | None = None
    method: str = "sendMessage"
    times: int | None = 1  # None: forever
    retry_after: int = 1
    migrate_to: int = 0
    hang_seconds: float = 30.0
    status: int = 200  # raw: the HTTP status and body sent as they are (garbage, odd JSON)
    body: str = ""
    skip: int = 0  # matching requests answered normally before the fault applies

    def answer(self, token: str = "") -> tuple[int, dict | str]:
        """The HTTP status and body (JSON, or a page as text) the server would answer."""
        if self.kind == "raw":
            return self.status, self.body
        if self.kind == "ok_no_result":
            return 200, {"ok": True}
        if self.kind == "not_message":
            return 200, {"ok": True, "result": True}
        if self.kind == "bad_message":  # no chat, no date: PTB cannot build a Message
            return 200, {"ok": True, "result": {"message_id": "seven"}}
        if self.kind == "404_after":
            return 404, _err(404, "Not Found")
        if self.kind == "502_echo":
            return 502, (
                "<html><body><h1>502 Bad Gateway</h1><p>upstream failed for "
                f"POST /bot{token}/sendMessage</p></body></html>"
            )
        if self.kind == "429":
            desc = f"Too Many Requests: retry after {self.retry_after}"
            return 429, _err(429, desc, {"retry_after": self.retry_after})
        if self.kind == "403":
            return 403, _err(403, "Forbidden: bot was blocked by the user")
        if self.kind == "parse":
            desc = "Bad Request: can't parse entities: unsupported start tag at byte offset 0"
            return 400, _err(400, desc)
        if self.kind == "chat_not_found":
            return 400, _err(400, "Bad Request: chat not found")
        if self.kind == "migrate":
            desc = "Bad Request: group chat was upgraded to a supergroup chat"
            return 400, _err(400, desc, {"migrate_to_chat_id": self.migrate_to})
        return 500, _err(500, "Internal Server Error")


# Faults after which the message did reach the chat: the answer is what goes wrong
ACCEPTING = {"ok_no_result", "not_message", "bad_message", "404_after"}


def _err(code: int, description: str, parameters: dict | None = None) -> dict:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


class _HTMLCheck(HTMLParser):
    """Validates Telegram's HTML subset and collects the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in ALLOWED_TAGS:
            self.error = self.error or f'unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = self.error or f'unexpected end tag "{tag}"'

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _strip_html(text: str) -> str:
    check = _HTMLCheck()
    check.feed(text)
    check.close()
    return "".join(check.text)


def check_html(text: str) -> str | None:
    """Why Telegram would refuse this HTML text, or None."""
    if re.search(r"&(?!(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text):
        return "unsupported character entity"
    check = _HTMLCheck()
    check.feed(text)
    check.close()
    if check.error or check.stack:
        return check.error or f'unclosed tag "{check.stack[-1]}"'
    return None


class FakeBotAPI:
    """The server: start(), then point python-telegram-bot at `base_url`."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.updates: list[dict] = []
        self.sent: dict[int, list[Sent]] = {}
        self.requests: list[tuple[str, dict]] = []
        self.callback_answers: list[dict] = []
        self.commands: list[dict] = []
        self.faults: list[Fault] = []
        self.chats: dict[int, dict] = {}
        self.admins: dict[int, set[int]] = {}
        self.blocked: set[int] = set()  # chats that blocked or removed the bot
        self.rejected: dict[str, int] = {}
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, Iterator[int]] = {}
        self._stopping = threading.Event()
        self._rate: float | None = None
        self._tokens = 0.0
        self._refilled = 0.0
        self._server: ThreadingHTTPServer | None = None
        self.token = ""  # the bot token seen in request paths

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> FakeBotAPI:
        """Listen on a free port of 127.0.0.1 in a background thread."""
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        serve = lambda: self._server.serve_forever(poll_interval=0.05)  # noqa: E731
        threading.Thread(target=serve, daemon=True).start()
        return self

    def stop(self) -> None:
        """Release hanging requests and close the socket."""
        self._stopping.set()
        with self.lock:
            self.lock.notify_all()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        """What to pass to ApplicationBuilder().base_url(...)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/bot"

    # -- acting as users ----------------------------------------------------------
    def user_sends(
        self,
        chat_id: int,
        text: str,
        user_id: int | None = None,
        chat_type: str | None = None,
        title: str = "",
    ) -> int:
        """A user writes `text` in a chat; returns the message id."""
        chat = self._chat(chat_id, chat_type, title)
        user = {"id": user_id or chat_id, "is_bot": False, "first_name": f"User{user_id}"}
        with self.lock:
            message_id = next(self._ids(chat_id))
        message = {"message_id": message_id, "date": int(time.time()), "chat": chat}
        message |= {"from": user, "text": text}
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self._push({"message": message})
        return message_id

    def user_presses(
        self, chat_id: int, message_id: int, data: str, user_id: int | None = None
    ) -> None:
        """A user taps the inline button carrying `data` under one of the bot's messages."""
        sent = self.message(chat_id, message_id)
        message = {"message_id": message_id, "date": int(time.time()), "from": BOT_USER}
        message |= {"chat": self._chat(chat_id, None, ""), "text": sent.plain}
        if sent.reply_markup:
            message["reply_markup"] = sent.reply_markup
        user = {"id": user_id or chat_id, "is_bot": False, "first_name": "User"}
        query = {"id": str(next(self._update_ids)), "from": user, "message": message}
        self._push({"callback_query": query | {"chat_instance": str(chat_id), "data": data}})

    def user_blocks(self, chat_id: int) -> None:
        """The user blocks the bot (a group removes it): sends then answer 403, and Telegram
        reports the change as a my_chat_member update."""
        with self.lock:
            self.blocked.add(chat_id)
        private = self._chat(chat_id, None, "")["type"] == "private"
        self._member_change(chat_id, "member", "kicked" if private else "left")

    def user_unblocks(self, chat_id: int) -> None:
        """The user unblocks the bot (a group adds it again)."""
        with self.lock:
            self.blocked.discard(chat_id)
        private = self._chat(chat_id, None, "")["type"] == "private"
        self._member_change(chat_id, "kicked" if private else "left", "member")

    def _member_change(self, chat_id: int, old: str, new: str) -> None:
        bot = dict(BOT_USER)
        user = {"id": abs(chat_id), "is_bot": False, "first_name": "User"}
        change = {"chat": self._chat(chat_id, None, ""), "from": user, "date": int(time.time())}

        def member(status: str) -> dict[str, Any]:
            banned = {"until_date": 0} if status == "kicked" else {}
            return {"status": status, "user": bot} | banned

        change |= {"old_chat_member": member(old), "new_chat_member": member(new)}
        self._push({"my_chat_member": change})

    def make_group(self, chat_id: int, title: str, admins: set[int]) -> None:
        """Declare a group (negative id) and who administers it."""
        self._chat(chat_id, "supergroup" if chat_id < -(10**12) else "group", title)
        self.admins[chat_id] = set(admins)

    # -- faults and limits --------------------------------------------------------
    def fail(self, kind: str, chat_id: int | None = None, **kwargs: Any) -> Fault:
        """Answer the next matching request(s) with an error (see Fault)."""
        fault = Fault(kind, chat_id, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Forget every injected fault."""
        with self.lock:
            self.faults.clear()

    def enforce_rate(self, per_second: float | None) -> None:
        """Answer sendMessage with 429 above `per_second` (token bucket, burst of one second)."""
        with self.lock:
            self._rate = per_second
            self._tokens = per_second or 0.0
            self._refilled = time.monotonic()

    # -- inspection ---------------------------------------------------------------
    def messages(self, chat_id: int) -> list[Sent]:
        """Every message the bot sent to a chat, in order."""
        with self.lock:
            return list(self.sent.get(chat_id, []))

    def texts(self, chat_id: int) -> list[str]:
        """The visible text of every message sent to a chat."""
        return [m.plain for m in self.messages(chat_id)]

    def message(self, chat_id: int, message_id: int) -> Sent:
        """One message the bot sent, by id."""
        return next(m for m in self.messages(chat_id) if m.message_id == message_id)

    def total_sent(self) -> int:
        """How many messages the bot sent in all."""
        with self.lock:
            return sum(len(v) for v in self.sent.values())

    async def wait_for(self, chat_id: int, count: int = 1, timeout: float = 10.0) -> list[Sent]:
        """Wait until a chat has received at least `count` messages."""
        import asyncio

        deadline = time.monotonic() + timeout
        while len(self.messages(chat_id)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"chat {chat_id} got {self.texts(chat_id)}")
            await asyncio.sleep(0.02)
        return self.messages(chat_id)

    def pending_updates(self) -> int:
        """Updates not yet confirmed by the bot."""
        with self.lock:
            return len(self.updates)

    # -- internals ----------------------------------------------------------------
    def _ids(self, chat_id: int) -> Iterator[int]:
        return self._message_ids.setdefault(chat_id, itertools.count(1))

    def _chat(self, chat_id: int, chat_type: str | None, title: str) -> dict:
        with self.lock:
            if chat_id not in self.chats:
                kind = chat_type or ("private" if chat_id > 0 else "group")
                chat: dict[str, Any] = {"id": chat_id, "type": kind}
                chat |= {"first_name": "User"} if kind == "private" else {"title": title or "G"}
                self.chats[chat_id] = chat
            return dict(self.chats[chat_id])

    def _push(self, update: dict) -> None:
        with self.lock:
            self.updates.append({"update_id": next(self._update_ids)} | update)
            self.lock.notify_all()

    def _fault_for(self, method: str, params: dict) -> Fault | None:
        chat = params.get("chat_id")
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.chat_id in (None, chat):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _over_rate(self) -> bool:
        with self.lock:
            if self._rate is None:
                return False
            now = time.monotonic()
            self._tokens = min(self._rate, self._tokens + (now - self._refilled) * self._rate)
            self._refilled = now
            if self._tokens < 1:
                self.rejected["rate"] = self.rejected.get("rate", 0) + 1
                return True
            self._tokens -= 1
            return False

    def handle(self, method: str, params: dict) -> tuple[int, dict | str] | None:
        """Answer one API call; None means hang up without answering."""
        with self.lock:
            self.requests.append((method, params))
        fault = self._fault_for(method, params)
        if fault and fault.kind == "hang":
            self._stopping.wait(fault.hang_seconds)
            return None
        if fault and fault.kind in ACCEPTING:
            self._api_sendMessage(params)  # delivered; only the answer goes wrong
        if fault:
            return fault.answer(self.token)
        if method == "sendMessage" and self._over_rate():
            return 429, _err(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        func = getattr(self, f"_api_{method}", None)
        if func is None:
            return 404, _err(404, "Not Found: method not found")
        result = func(params)
        if isinstance(result, tuple):
            return result
        return 200, {"ok": True, "result": result}

    def _api_getMe(self, params: dict) -> dict:
        return BOT_USER | {"can_join_groups": True, "can_read_all_group_messages": False}

    def _api_getUpdates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self.lock:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.lock.wait(min(left, 0.5))
            return self.updates[: int(params.get("limit") or 100)]

    def _message_result(self, sent: Sent) -> dict:
        chat = self._chat(sent.chat_id, None, "")
        result = {"message_id": sent.message_id, "date": int(time.time()), "chat": chat}
        result |= {"from": BOT_USER, "text": sent.plain}
        if sent.reply_markup:
            result["reply_markup"] = sent.reply_markup
        return result

    def _api_sendMessage(self, params: dict) -> dict | tuple[int, dict]:
        chat_id = params["chat_id"]
        if chat_id in self.blocked:
            return 403, _err(403, "Forbidden: bot was blocked by the user")
        text, mode = str(params.get("text", "")), params.get("parse_mode")
        refused = _refusal(text, mode, params.get("reply_markup"))
        if refused:
            return refused
        with self.lock:
            sent = Sent(chat_id, next(self._ids(chat_id)), text, mode)
            sent.reply_markup = params.get("reply_markup")
            sent.link_preview_options = params.get("link_preview_options")
            self.sent.setdefault(chat_id, []).append(sent)
        return self._message_result(sent)

    def _edit(self, params: dict, **changes: Any) -> dict:
        sent = self.message(params["chat_id"], int(params["message_id"]))
        with self.lock:
            for key, value in changes.items():
                setattr(sent, key, value)
            sent.edits += 1
        return self._message_result(sent)

    def _api_editMessageText(self, params: dict) -> dict | tuple[int, dict]:
        refused = _refusal(params["text"], params.get("parse_mode"), params.get("reply_markup"))
        if refused:
            return refused
        changes = {"text": params["text"], "parse_mode": params.get("parse_mode")}
        return self._edit(params, **changes, reply_markup=params.get("reply_markup"))

    def _api_editMessageReplyMarkup(self, params: dict) -> dict | tuple[int, dict]:
        refused = _refusal("x", None, params.get("reply_markup"))
        return refused or self._edit(params, reply_markup=params.get("reply_markup"))

    def _api_answerCallbackQuery(self, params: dict) -> bool:
        with self.lock:
            self.callback_answers.append(params)
        return True

    def _api_setMyCommands(self, params: dict) -> bool:
        self.commands = list(params.get("commands") or [])
        return True

    def _api_getChat(self, params: dict) -> dict | tuple[int, dict]:
        chat_id = params["chat_id"]
        if isinstance(chat_id, str):  # @channel: give it a stable negative id
            chat = {"id": -1001000000000 - len(chat_id), "type": "channel", "title": chat_id}
            return chat | {"username": chat_id.lstrip("@")} | _FULL_INFO
        if chat_id not in self.chats:
            return 400, _err(400, "Bad Request: chat not found")
        return self._chat(chat_id, None, "") | _FULL_INFO

    def _member(self, chat_id: int, user_id: int) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        if user_id in self.admins.get(chat_id, set()) or chat_id == user_id:
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": "member", "user": user}

    def _api_getChatMember(self, params: dict) -> dict:
        return self._member(params["chat_id"], int(params["user_id"]))

    def _api_getChatAdministrators(self, params: dict) -> list[dict]:
        chat_id = params["chat_id"]
        return [self._member(chat_id, user) for user in sorted(self.admins.get(chat_id, ()))]

    def _api_deleteWebhook(self, params: dict) -> bool:
        return True

    def _api_close(self, params: dict) -> bool:
        return True

    def _api_logOut(self, params: dict) -> bool:
        return True


def _refusal(text: str, mode: str | None, markup: dict | None) -> tuple[int, dict] | None:
    """Telegram's 400 for a text or keyboard it would refuse, or None."""
    problem = check_html(text) if mode == "HTML" else None
    if problem:
        return 400, _err(400, f"Bad Request: can't parse entities: {problem}")
    if len(_strip_html(text) if mode == "HTML" else text) > 4096:
        return 400, _err(400, "Bad Request: message is too long")
    if not text.strip():
        return 400, _err(400, "Bad Request: message text is empty")
    buttons = [b for row in (markup or {}).get("inline_keyboard", []) for b in row]
    if any(len(b.get("callback_data", "").encode()) > 64 for b in buttons):
        return 400, _err(400, "Bad Request: BUTTON_DATA_INVALID")
    return None


def _decode_params(content_type: str, body: bytes, query: str) -> dict:
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
    if "json" in content_type and body:
        params |= json.loads(body)
        return params
    for key, values in parse_qs(body.decode(), keep_blank_values=True).items():
        value: Any = values[-1]
        if key in _JSON_KEYS:
            with contextlib.suppress(ValueError):  # e.g. chat_id "@channel" stays a string
                value = json.loads(value)
        params[key] = value
    return params


class _Handler(BaseHTTPRequestHandler):
    api: FakeBotAPI
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read caplog
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        match = _PATH.match(url.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not match:
            self._reply(404, _err(404, "Not Found"))
            return
        params = _decode_params(self.headers.get("Content-Type", ""), body, url.query)
        self.api.token = match["token"]  # what a proxy in front of Telegram could echo
        answer = self.api.handle(match["method"], params)
        if answer is None:
            self.close_connection = True
            return
        self._reply(*answer)

    def _reply(self, status: int, body: dict | str) -> None:
        page = isinstance(body, str)
        data = body.encode() if page else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if page else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the client gave up (timeout, shutdown)
            self.wfile.write(data)

    do_GET = do_POST = _serve


@pytest.fixture
def bot_api() -> Iterator[FakeBotAPI]:
    """A running fake Bot API server; stopped after the test."""
    api = FakeBotAPI().start()
    yield api
    api.stop()


async def say(
    api: FakeBotAPI, text: str, chat: int, user: int | None = None, timeout: float = 10.0
) -> Sent:
    """A user writes in a chat; returns the bot's (first) answer."""
    before = len(api.messages(chat))
    api.user_sends(chat, text, user_id=user)
    return (await api.wait_for(chat, before + 1, timeout))[before]


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Wait until `condition()` is true (the bot answers in the background)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.02)
