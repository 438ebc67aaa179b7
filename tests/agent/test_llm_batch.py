"""Batch API files (issue 28): the exported body is what the live client sends; export -> the local
Batch API server (through the openai SDK) -> import fills the decision cache so the next plan asks
nothing and decides as the live path does; failed, expired and partial batches; bad input refused in
one line with nothing stored. No model: the upstream is testing.local_servers.chat."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from agent_cases import CASES

from activation.run import run_activation
from activation.settings import ActivateSettings
from agent import batch_cli, llm
from agent.batch import BatchRequest, BatchSettings, export_requests, import_output, read_output, request_body
from agent.batch_run import read_input
from agent.batch_submit import BatchFailed, submit_file
from agent.cache import cache_path
from agent.prompts import render_prompt
from core.config import LLMSettings, load_settings
from core.reference import load_reference
from testing.local_servers.batch_api import BatchAPIServer
from testing.local_servers.chat import ChatServer, answer

LIMIT = "80"  # segmented customers per plan: enough for shared and distinct prompts, quick


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatServer]:
    with ChatServer() as server:
        assert isinstance(server, ChatServer)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
        monkeypatch.setenv("NBA_LIMIT", LIMIT)
        yield server


def _use_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> Path:
    monkeypatch.setenv("NBA_CACHE_DIR", str(tmp_path / name))
    return cache_path()


def _plan() -> tuple[Any, list[tuple]]:
    """A dry run in LLM mode (`make plan MODE=llm`): its summary and its decisions."""
    import duckdb

    from warehouse.paths import duckdb_path

    summary = run_activation(load_settings(ActivateSettings, mode="llm"))
    con = duckdb.connect(str(duckdb_path()), read_only=True)
    try:
        rows = con.execute(
            "select decision_id, customer_id, status, channel, template_id, discount_pct, subject, message, "
            "fallback_reason from ops.decision_log where run_id = ? order by customer_id",
            [summary.run_id],
        ).fetchall()
    finally:
        con.close()
    return summary, rows


def _cached_rows(path: Path) -> list[tuple]:
    if not path.exists():
        return []
    con = sqlite3.connect(path)
    try:
        return con.execute("select key, proposal, failure_reason from proposals_v2 order by key").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("mode", ["tools", "json_schema"])
def test_exported_body_is_what_the_live_client_sends(mode: str) -> None:
    """The same prompt through LLMClient.propose (captured at a real server) and request_body."""
    ref = load_reference()
    with ChatServer() as server:
        assert isinstance(server, ChatServer)
        settings = LLMSettings(api_key="sk-x", base_url=f"{server.url}/v1", cache=False, instructor_mode=mode)  # type: ignore[arg-type]
        for case, channels in (("hvl_normal", ["email", "sms", "push"]), ("churn_normal", ["sms"])):
            ctx = CASES[case]
            prompt = render_prompt(
                ctx, version="v1", ref=ref, allowed_channels=channels, goal="90d_clv", discount_cap=5.0
            )
            client = llm.LLMClient(settings, endpoint=f"{server.url}/v1", ref=ref)

            async def live(client: llm.LLMClient = client, ctx: Any = ctx, prompt: Any = prompt) -> Any:
                try:
                    return await client.propose(ctx, prompt)
                finally:
                    await client.aclose()

            outcome = asyncio.run(live())
            assert outcome.failure_reason is None
            model = llm.response_model_for_prompt(ctx, prompt, ref)
            exported = request_body(settings, BatchRequest("k", prompt, model))
            assert exported == server.bodies[-1]
            assert ("tools" in exported) == (mode == "tools")
            assert ("response_format" in exported) == (mode == "json_schema")


def _submit(file: Path, out: Path, chat: ChatServer, **knobs: Any) -> Any:
    """Run FILE on a local Batch API server (forwarding to the chat server) with the product's submit."""
    with BatchAPIServer(upstream=f"{chat.url}/v1", **knobs) as batch_server:
        assert isinstance(batch_server, BatchAPIServer)
        settings = LLMSettings(base_url=f"{batch_server.url}/v1", api_key=batch_server.api_key)  # type: ignore[arg-type]
        result = submit_file(settings, file, out, poll_s=0.02, say=lambda _s: None)
        return result, batch_server.stats()


def test_round_trip_through_the_batch_api_equals_the_live_path(
    warehouse_copy: Path, chat: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_cache(monkeypatch, tmp_path, "live")
    live_summary, live = _plan()
    live_calls = len(chat.received)
    assert live_summary.llm_calls == live_calls > 0

    batch_cache = _use_cache(monkeypatch, tmp_path, "batch")
    requests, answers = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    counts = export_requests(load_settings(BatchSettings), requests)
    assert counts["exported"] == counts["distinct"] == live_calls  # one line per distinct request
    lines = read_input(requests)
    assert len({line.custom_id for line in lines}) == len(lines)
    batch, stats = _submit(requests, answers, chat)
    assert batch.status == "completed" and stats["forwarded"] == len(lines)
    assert batch.request_counts.completed == len(lines) and batch.error_file_id is None

    imported = import_output(load_settings(BatchSettings), answers)
    assert imported == {"imported": len(lines), "invalid": 0, "errors": 0, "unknown": 0, "already_cached": 0}
    assert {row[0] for row in _cached_rows(batch_cache)} == {line.custom_id for line in lines}
    before = len(chat.received)
    summary, decided = _plan()
    assert summary.llm_calls == 0 and len(chat.received) == before  # the plan asked nothing
    assert decided == live  # and decided exactly as the live path did on the same answers
    # the next export finds nothing left to ask
    again = export_requests(load_settings(BatchSettings), tmp_path / "again.jsonl")
    assert again == {"distinct": len(lines), "cached": len(lines), "exported": 0}
    assert (tmp_path / "again.jsonl").read_text() == ""


def test_an_expired_batch_leaves_the_rest_to_the_live_path(
    warehouse_copy: Path, chat: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_cache(monkeypatch, tmp_path, "expired")
    requests, answers = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    export_requests(load_settings(BatchSettings), requests)
    total = len(read_input(requests))
    batch, _ = _submit(requests, answers, chat, expire_after=5, error_every=4)
    assert batch.status == "expired" and batch.error_file_id and batch.output_file_id
    errors = [json.loads(x) for x in answers.read_text().splitlines() if json.loads(x)["error"]]
    assert len(errors) == total - 5 and {e["error"]["code"] for e in errors} == {"batch_expired"}
    counts = import_output(load_settings(BatchSettings), answers)
    # of the first 5 lines the 4th was answered 500 (partial output): 4 imported, the rest not stored
    assert counts == {"imported": 4, "invalid": 0, "errors": total - 4, "unknown": 0, "already_cached": 0}
    before = len(chat.received)
    summary, _ = _plan()
    assert summary.llm_calls == len(chat.received) - before == total - 4  # only the unanswered ones


def test_a_malformed_file_fails_the_batch_with_its_errors(tmp_path: Path) -> None:
    with ChatServer() as chat:
        good = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": []}}
        file = tmp_path / "bad.jsonl"
        file.write_text(json.dumps(good) + "\n" + json.dumps({**good, "url": "/v1/embeddings"}) + "\n")
        with BatchAPIServer(upstream=f"{chat.url}/v1") as server:
            assert isinstance(server, BatchAPIServer)
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key)
            uploaded = client.files.create(file=file.open("rb"), purpose="batch")
            created = client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            assert created.status == "validating"
            settings = LLMSettings(base_url=f"{server.url}/v1", api_key=server.api_key)  # type: ignore[arg-type]
            # the product's own submit: read_input accepts only chat-completions lines, so it refuses first
            with pytest.raises(Exception, match="line 2 is not a Batch API request"):
                submit_file(settings, file, tmp_path / "out.jsonl", poll_s=0.01)
            while (batch := client.batches.retrieve(created.id)).status == "validating":
                pass
            assert batch.status == "failed" and batch.errors and batch.errors.data
            assert [(e.code, e.line) for e in batch.errors.data] == [("mismatched_endpoint", 2)]
            assert server.forwarded == 0


def test_submit_reports_a_failed_batch_and_cancel_stops_one(tmp_path: Path) -> None:
    bodies = [{"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]} for i in range(6)]
    file = tmp_path / "in.jsonl"
    file.write_text(
        "".join(
            json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": b})
            + "\n"
            for i, b in enumerate(bodies)
        )
    )
    with ChatServer() as chat, BatchAPIServer(upstream=f"{chat.url}/v1", step_s=0.3) as server:
        assert isinstance(server, BatchAPIServer)
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key)
        uploaded = client.files.create(file=file.open("rb"), purpose="batch")
        assert client.files.retrieve(uploaded.id).bytes == file.stat().st_size
        assert client.files.content(uploaded.id).content == file.read_bytes()
        created = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.cancel(created.id).status == "cancelling"
        while (batch := client.batches.retrieve(created.id)).status not in ("cancelled", "completed"):
            pass
        assert batch.status == "cancelled" and batch.output_file_id is None and server.forwarded == 0
        lines = client.files.content(batch.error_file_id or "").text.splitlines()
        assert [json.loads(x)["error"]["code"] for x in lines] == ["batch_cancelled"] * 6

        server.contents[uploaded.id] = b"not json\n"  # the same file id, now malformed
        settings = LLMSettings(base_url=f"{server.url}/v1", api_key=server.api_key)  # type: ignore[arg-type]
        with pytest.raises(BatchFailed, match=r"1 errors in FILE=.* \(line 1: This line is not parseable"):
            state = tmp_path / "out.jsonl.batch"
            state.write_text(
                client.batches.create(
                    input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
                ).id
            )
            submit_file(settings, file, tmp_path / "out.jsonl", poll_s=0.05, say=lambda _s: None)
        assert not state.exists()  # a failed batch is not resumed


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = batch_cli.main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def test_bad_input_is_refused_in_one_line_and_stores_nothing(
    warehouse_copy: Path, chat: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requests, answers = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    assert _cli(["export", "--out", str(requests)], capsys)[0] == 0
    lines = read_input(requests)
    good = [
        json.dumps(
            {
                "id": "x",
                "custom_id": line.custom_id,
                "response": {"status_code": 200, "body": answer(line.body)},
                "error": None,
            }
        )
        for line in lines
    ]
    stranger = json.dumps(
        {"custom_id": "0" * 32, "response": {"status_code": 200, "body": {}}, "error": None}
    )
    cases = {
        "missing": (tmp_path / "nope.jsonl", "no such file"),
        "not jsonl": (tmp_path / "text.jsonl", "line 1 is not a JSON object"),
        "an input file": (requests, "is a Batch API input file (requests), not the output"),
        "wrong shape": (tmp_path / "shape.jsonl", "line 1 is not a Batch API output file line (response"),
        "another plan's": (tmp_path / "mixed.jsonl", "1 of "),
    }
    (tmp_path / "text.jsonl").write_text("custom_id,answer\nx,y\n")
    (tmp_path / "shape.jsonl").write_text(json.dumps({"custom_id": "x", "answer": 1}) + "\n")
    (tmp_path / "mixed.jsonl").write_text("\n".join([*good, stranger]) + "\n")
    for name, (path, problem) in cases.items():
        code, err = _cli(["import", "--file", str(path)], capsys)
        assert code == 2, name
        assert len(err.splitlines()) == 1 and problem in err, (name, err)
        assert "nothing was imported" in err or name != "another plan's"
    assert _cached_rows(cache_path()) == []  # not even the good answers of the mixed file
    code, err = _cli(["import", "--file", str(tmp_path / "mixed.jsonl"), "--skip-unknown"], capsys)
    assert code == 0 and len(_cached_rows(cache_path())) == len(lines)
    assert _cli(["run", "--file", str(answers)], capsys) == (
        2,
        "error: OUT= is required: e.g. make llm-batch-run FILE=batch/requests.jsonl OUT=batch/answers.jsonl",
    )
    code, err = _cli(["run", "--file", str(tmp_path / "mixed.jsonl"), "--out", str(answers)], capsys)
    assert code == 2 and "is a Batch API output file (answers): import it" in err


def test_the_command_export_suggests_runs_nothing_a_file_name_holds(
    warehouse_copy: Path, chat: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make llm-batch-export OUT="x';touch FILE;'"` printed `make llm-batch-run FILE=x';touch FILE;'
    OUT=...`: pasted into a shell, that line ran the command in the name. The path is quoted."""
    import shlex

    marker = tmp_path / "pwned"
    out = tmp_path / f"x';touch {marker};'.jsonl"
    code, err = _cli(["export", "--out", str(out)], capsys)
    assert code == 0 and out.exists(), err
    hint = err.splitlines()[-1]
    assert f"FILE={shlex.quote(str(out))} OUT=" in hint, hint
    suggested = hint.split("(", 1)[1].split(" OUT=")[0]
    assert shlex.split(suggested) == ["make", "llm-batch-run", f"FILE={out}"]
    assert not marker.exists()


def test_the_command_export_suggests_for_a_name_with_a_line_break_runs_nothing_either(
    warehouse_copy: Path, chat: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name with a line break was shown bare in the suggested command (`FILE=x;touch F;...\\n...`):
    pasted into bash, it ran `touch F`. It is ANSI-C quoted now: one line, and bash reads back the
    exact name from it, running nothing."""
    import subprocess

    marker = tmp_path / "pwned"
    out = tmp_path / f"x';touch {marker};$(touch {marker}2)`touch {marker}3`\ntouch {marker}4 ñ\\.jsonl"
    code, err = _cli(["export", "--out", str(out)], capsys)
    assert code == 0 and out.exists(), err
    hint = err.splitlines()[-1]
    suggested = hint.split("(make ", 1)[1].split(" OUT=")[0]
    assert suggested.startswith("llm-batch-run FILE=$'"), hint
    echoed = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {suggested}"], capture_output=True, check=True
    ).stdout
    assert echoed.split(b"\0")[:-1] == [b"llm-batch-run", b"FILE=" + os.fsencode(out)]
    assert not list(tmp_path.glob("pwned*"))


def test_export_never_writes_over_an_existing_out_unless_asked_and_then_moves_it_aside(
    warehouse_copy: Path, chat: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 29: `make llm-batch-export OUT=<file>` replaced an existing file without a word. Now a
    new path is written; an existing one is refused in one line (exit 2) naming it and the ways out,
    and left byte for byte; OVERWRITE=1 (--overwrite) moves it aside to <OUT>.replaced-<time> first."""
    fresh = tmp_path / "fresh.jsonl"
    assert _cli(["export", "--out", str(fresh)], capsys)[0] == 0
    exported = fresh.read_bytes()
    assert len(read_input(fresh)) > 0

    theirs = tmp_path / "theirs.jsonl"
    theirs.write_bytes(b"someone's notes, not a batch file\n\x00\xff")
    before = theirs.read_bytes()
    for existing in (theirs, fresh):
        code, err = _cli(["export", "--out", str(existing)], capsys)
        assert code == 2 and len(err.splitlines()) == 1, err
        assert str(existing) in err and "exists" in err and "another OUT=" in err and "OVERWRITE=1" in err
    assert theirs.read_bytes() == before and fresh.read_bytes() == exported
    assert sorted(p.name for p in tmp_path.glob("theirs*")) == ["theirs.jsonl"]

    code, err = _cli(["export", "--out", str(theirs), "--overwrite"], capsys)
    assert code == 0, err
    (aside,) = tmp_path.glob("theirs.jsonl.replaced-*")
    assert aside.read_bytes() == before and f"aside to {aside}" in err
    assert theirs.read_bytes() == exported  # the new file, as a fresh export writes it


def test_export_with_overwrite_moves_nothing_aside_when_the_cache_folder_is_refused(
    warehouse_copy: Path,
    chat: ChatServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """OVERWRITE=1 with an NBA_CACHE_DIR that is someone else's folder: OUT was moved aside, then
    the export was refused ("nothing was written"). The folder is checked before OUT is touched."""
    theirs = tmp_path / "theirs.jsonl"
    theirs.write_text("my notes\n")
    folder = tmp_path / "their_folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    monkeypatch.setenv("NBA_CACHE_DIR", str(folder))
    code, err = _cli(["export", "--out", str(theirs), "--overwrite"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "NBA_CACHE_DIR" in err, err
    assert theirs.read_text() == "my notes\n" and not list(tmp_path.glob("theirs.jsonl.replaced-*"))
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


def test_an_invalid_answer_is_stored_as_the_live_path_stores_it(
    warehouse_copy: Path, chat: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests, answers = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    export_requests(load_settings(BatchSettings), requests)
    lines = read_input(requests)
    out = []
    for i, line in enumerate(lines):
        body = answer(line.body)
        if i == 0:  # a discount far above the cap: the schema refuses it
            call = body["choices"][0]["message"]["tool_calls"][0]["function"]
            call["arguments"] = json.dumps({**json.loads(call["arguments"]), "discount_pct": 90})
        if i == 1:
            body["choices"][0]["finish_reason"] = "length"  # cut off
        out.append(
            json.dumps(
                {"custom_id": line.custom_id, "response": {"status_code": 200, "body": body}, "error": None}
            )
        )
    answers.write_text("\n".join(out) + "\n")
    counts = import_output(load_settings(BatchSettings), answers)
    assert counts["imported"] == len(lines) - 2 and counts["invalid"] == 2
    stored = {k: f for k, _p, f in _cached_rows(cache_path())}
    assert stored[lines[0].custom_id] == "invalid_output" and stored[lines[1].custom_id] == "truncated_output"
    summary, decided = _plan()
    assert summary.llm_calls == 0  # deterministic failures are answers too: not asked again
    assert {"invalid_output", "truncated_output"} <= {row[-1] for row in decided}


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"NBA_MODE": "rules"}, "error: MODE / NBA_MODE: batch files hold LLM requests"),
        ({"NBA_LLM__CACHE": "0"}, "error: NBA_LLM__CACHE: is off"),
    ],
)
def test_settings_without_llm_requests_are_refused(
    env: dict[str, str],
    problem: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, err = _cli(["export", "--out", str(tmp_path / "r.jsonl")], capsys)
    assert code == 2 and err.startswith(problem) and len(err.splitlines()) == 1
    assert not (tmp_path / "r.jsonl").exists()


def test_submit_to_an_endpoint_that_is_down_or_refuses_the_key_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """make llm-batch-submit against a closed port printed the SDK's traceback; a wrong key too.
    Each is one line naming the setting to check, exit 1, and the key is never shown."""
    file = tmp_path / "in.jsonl"
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    file.write_text(
        json.dumps({"custom_id": "r0", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
    )
    key = "sk-sentinel-never-shown"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("NBA_LLM__TIMEOUT_S", "2")
    code, err = _cli(["submit", "--file", str(file), "--out", str(tmp_path / "out.jsonl")], capsys)
    assert code == 1 and len(err.splitlines()) == 1, err
    assert f"127.0.0.1:{closed}" in err and "could not be reached" in err and "OPENAI_BASE_URL" in err
    assert key not in err and "Traceback" not in err
    with ChatServer() as chat, BatchAPIServer(upstream=f"{chat.url}/v1") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        code, err = _cli(["submit", "--file", str(file), "--out", str(tmp_path / "out.jsonl")], capsys)
    assert code == 1 and len(err.splitlines()) == 1 and "refused the key: check OPENAI_API_KEY" in err, err
    assert key not in err


def test_submit_never_writes_over_an_existing_out_and_uploads_nothing_when_it_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """make llm-batch-submit OUT=<a file of the user's> replaced it once the batch was done; OUT=<a
    folder> ran (and paid for) the batch, then failed to write, leaving .<OUT>.tmp and <OUT>.batch;
    a file of the user's at <OUT>.batch was sent as a batch id. Each is refused in one line (exit 2)
    before anything is uploaded, left as it is; OVERWRITE=1 (--overwrite) moves an OUT aside first."""
    file = tmp_path / "in.jsonl"
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    file.write_text(
        json.dumps({"custom_id": "r0", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
    )
    theirs = tmp_path / "notes.txt"
    theirs.write_text("my notes\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    (tmp_path / "answers.jsonl.batch").write_text("my batch notes\n")
    with ChatServer() as chat, BatchAPIServer(upstream=f"{chat.url}/v1") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        before = sorted(p.name for p in tmp_path.rglob("*"))
        for out, problem in (
            (theirs, "exists; nothing was written"),
            (folder, "exists; nothing was written"),
            (tmp_path / "answers.jsonl", "does not hold a batch id"),
        ):
            code, err = _cli(["submit", "--file", str(file), "--out", str(out), "--poll-s", "0.02"], capsys)
            assert code == 2 and len(err.splitlines()) == 1 and problem in err, err
        assert server.stats()["requests"] == 0 and server.files == {} and server.batches == {}
        assert sorted(p.name for p in tmp_path.rglob("*")) == before
        assert theirs.read_text() == "my notes\n"
        code, err = _cli(
            ["submit", "--file", str(file), "--out", str(theirs), "--poll-s", "0.02", "--overwrite"], capsys
        )
    assert code == 0, err
    (aside,) = tmp_path.glob("notes.txt.replaced-*")
    assert aside.read_text() == "my notes\n" and read_output(theirs)
