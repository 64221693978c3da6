"""Teachers: the rule teacher's texts, scrubbing, and the openai teacher against a real HTTP server thread."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lcrec.config import TeacherConfig
from lcrec.tasks.teachers import (
    ItemView,
    OpenAITeacher,
    RuleTeacher,
    TeacherCache,
    TeacherError,
    TeacherRequest,
    chat_completions_url,
    chat_messages,
    generate_texts,
    make_teacher,
    scrub,
)

HEAT = ItemView("3", "Heat (1995)", "Genres: Action, Crime, Thriller.", ("Action", "Crime", "Thriller"), "", 1995)


class ChatServer:
    """A tiny OpenAI-compatible server on 127.0.0.1: answers /v1/chat/completions with ``reply``; the first
    ``fail_first`` requests get ``fail_status``; ``delay_s`` sleeps before answering."""

    def __init__(self, reply="I want a tense crime story like Heat (1995) with <a_1><b_2>.", fail_first=0,
                 fail_status=503, delay_s=0.0, body=None):
        self.reply, self.fail_first, self.fail_status, self.delay_s, self.body = (
            reply, fail_first, fail_status, delay_s, body)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "payload": payload,
                                        "auth": self.headers.get("Authorization")})
                if server.delay_s:
                    time.sleep(server.delay_s)
                if len(server.requests) <= server.fail_first:
                    status, body = server.fail_status, {"error": "busy"}
                elif server.body is not None:
                    status, body = 200, server.body
                else:
                    status, body = 200, {"id": "x", "object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": server.reply},
                         "finish_reason": "stop"}]}
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _cfg(url, **kw) -> TeacherConfig:
    return TeacherConfig(name="openai", url=url, model="tiny", timeout_s=kw.pop("timeout_s", 5.0),
                         retries=kw.pop("retries", 2), retry_backoff_s=0.01, **kw)


def _intention() -> TeacherRequest:
    toy = ItemView("1", "Toy Story (1995)", "", ("Animation", "Comedy"), "", 1995, 5.0)
    return TeacherRequest("intention", "u9", (toy,), HEAT)


# --------------------------------------------------------------------------------------------------- rule
def test_rule_preference_with_ratings_decades_brands_and_recent():
    items = (
        ItemView("a", "A", "", ("Jazz", "Vinyl"), "Blue Note", 1958, 5.0),
        ItemView("b", "B", "", ("Jazz",), "Blue Note", 1963, 4.0),
        ItemView("c", "C", "", ("Rock", "Vinyl"), "", 1985, 2.0),
        ItemView("d", "D", "", ("Rock",), "", 1991, 1.0),
        ItemView("e", "E", "", ("Pop",), "", 1999, None),
    )
    text = RuleTeacher().generate(TeacherRequest("preference", "u", items))
    # Jazz 2, Vinyl 2, Rock 2 (ties keep first-seen order); rated means: Jazz 4.5, Vinyl 3.5, Rock 1.5;
    # years 1958..1999 -> quartiles 1963 and 1991; last three items: Rock, Vinyl, Pop
    assert text == ("This user mostly chooses Jazz, Vinyl and Rock. They rate Jazz highest (4.5 out of 5 on "
                    "average) and are least fond of Rock (1.5). Their picks range mostly from the 1960s to the "
                    "1990s. They keep coming back to Blue Note. Lately they lean towards Rock and Vinyl.")


def test_rule_intention_without_categories_or_year():
    bare = ItemView("x", "Thing", "", (), "Acme", None)
    text = RuleTeacher.intention(TeacherRequest("intention", "u", (), bare))
    assert "Acme" in text and "Thing" not in text and text.endswith((".", "?"))


def test_rule_teacher_is_deterministic_and_never_names_the_target():
    a = RuleTeacher().generate(_intention())
    assert a == RuleTeacher().generate(_intention())
    assert "Heat" not in a and "Action, Crime and Thriller" in a and "the mid 1990s" in a


def test_scrub_removes_title_and_codes_but_not_other_words():
    text = scrub('Like "Heat (1995)" or heat, not a Heater. <a_1><b_2>', HEAT)
    assert text == "Like this one or this one, not a Heater."


def test_chat_completions_url_forms():
    for url in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/chat/completions"):
        assert chat_completions_url(url) == "http://h:1/v1/chat/completions"


def test_chat_messages_hide_nothing_needed_and_ask_not_to_name_the_title():
    msgs = chat_messages(_intention())
    assert msgs[-1]["role"] == "user" and "Heat (1995)" in msgs[-1]["content"]
    assert "Do not mention its title" in msgs[-1]["content"]


# --------------------------------------------------------------------------------------------------- openai
def test_openai_teacher_calls_a_real_endpoint(monkeypatch):
    monkeypatch.setenv("LCREC_TEST_KEY", "sk-test")
    with ChatServer() as server:
        teacher = make_teacher(_cfg(server.url, api_key_env="LCREC_TEST_KEY"))
        cache = TeacherCache()
        texts, stats = generate_texts(teacher, [_intention()], cache)
        teacher.close()
    assert texts == ["I want a tense crime story like this one with ."]
    assert stats == {"requests": 1, "cache_hits": 0, "generated": 1}
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["payload"]["model"] == "tiny" and req["payload"]["messages"] == chat_messages(_intention())
    assert req["payload"]["max_tokens"] == 96 and req["payload"]["temperature"] == 0.0


def test_openai_teacher_retries_busy_server():
    with ChatServer(fail_first=2, fail_status=503) as server:
        teacher = OpenAITeacher(_cfg(server.url, retries=2))
        assert teacher.generate(_intention()).startswith("I want")
    assert len(server.requests) == 3


def test_openai_teacher_gives_up_with_a_clear_error():
    with ChatServer(fail_first=10, fail_status=502) as server:
        teacher = OpenAITeacher(_cfg(server.url, retries=1))
        with pytest.raises(TeacherError, match=r"failed after 2 tries: HTTP 502.*tasks.teacher.url"):
            teacher.generate(_intention())
    assert len(server.requests) == 2


def test_openai_teacher_client_error_is_not_retried():
    with ChatServer(fail_first=10, fail_status=401) as server:
        with pytest.raises(TeacherError, match="HTTP 401"):
            OpenAITeacher(_cfg(server.url)).generate(_intention())
    assert len(server.requests) == 1


def test_openai_teacher_timeout():
    with ChatServer(delay_s=1.0) as server:
        with pytest.raises(TeacherError, match="no answer within 0.2 s"):
            OpenAITeacher(_cfg(server.url, timeout_s=0.2, retries=0)).generate(_intention())


def test_openai_teacher_unreachable_and_bad_reply():
    with ChatServer() as server:
        url = server.url
    with pytest.raises(TeacherError, match="could not connect"):
        OpenAITeacher(_cfg(url, retries=0)).generate(_intention())
    with ChatServer(body={"unexpected": True}) as server:
        with pytest.raises(TeacherError, match=r"choices\[0\].message.content"):
            OpenAITeacher(_cfg(server.url)).generate(_intention())


def test_openai_teacher_needs_a_url():
    with pytest.raises(TeacherError, match="tasks.teacher.url is empty"):
        make_teacher(TeacherConfig(name="openai"))
    with pytest.raises(ValueError, match="rule, openai, smollm2"):
        make_teacher(TeacherConfig(name="gpt"))


# --------------------------------------------------------------------------------------------------- cache
def test_cache_reuses_texts_and_invalidates_changed_inputs(tmp_path):
    path = tmp_path / "cache.json"
    with ChatServer(reply="Something tense.") as server:
        teacher = OpenAITeacher(_cfg(server.url))
        req = _intention()
        generate_texts(teacher, [req], TeacherCache.load(path), path)
        texts, stats = generate_texts(teacher, [req], TeacherCache.load(path), path)
        assert texts == ["Something tense."] and stats["cache_hits"] == 1 and len(server.requests) == 1
        changed = TeacherRequest("intention", "u9", (ItemView("1", "Toy Story (1995)", rating=1.0),), HEAT)
        generate_texts(teacher, [changed], TeacherCache.load(path), path)
        assert len(server.requests) == 2
    saved = json.loads(path.read_text())
    assert list(saved["entries"]) == ["openai:tiny|u9|intention:3"]


def test_corrupt_cache_file_is_reported(tmp_path):
    (tmp_path / "c.json").write_text("{nope")
    with pytest.raises(ValueError, match="delete it to regenerate"):
        TeacherCache.load(tmp_path / "c.json")


# --------------------------------------------------------------------------------------------------- smollm2
@pytest.mark.slow
def test_smollm2_teacher_writes_a_scrubbed_text():
    """The bundled SmolLM2-Instruct really generates (first run converts the GGUF once, ~40 s)."""
    teacher = make_teacher(TeacherConfig(name="smollm2", max_new_tokens=12))
    texts, stats = generate_texts(teacher, [_intention()], TeacherCache())
    teacher.close()
    assert stats["generated"] == 1 and texts[0].strip()
    assert "Heat (1995)" not in texts[0] and "<a_" not in texts[0]
