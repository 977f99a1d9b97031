"""`promptgauge prompts ...` against a real server, on both backends: each
command's output, its --json (protobuf's JSON mapping of the RPC's
response), and one line with the right exit code for every failure, with
nothing changed. The commands run in this process (cli.main, a real gRPC
client to the session's server); a few run as real subprocesses too."""

import io
import json
import subprocess
import sys

import pytest
from google.protobuf import json_format

from promptgauge.server import cli
from promptgauge.v1 import prompts_pb2


@pytest.fixture
def run(server, api_key, capsys):
    """Run `promptgauge ARGS` against the session's server as this test's
    account; (exit code, stdout, stderr)."""

    def run(*args: str, stdin: bytes | None = None, connect: bool = True):
        flags = ["--target", server.target, "--api-key", api_key] if connect else []
        if stdin is not None:
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        try:
            code = cli.main([*args, *flags])
        finally:
            sys.stdin = sys.__stdin__
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def template(tmp_path):
    def write(text: str, name: str = "t.txt"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def _failed(result, code: int, *words: str) -> str:
    got, out, err = result
    assert got == code, (got, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("promptgauge"), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _versions(client, name: str) -> list[tuple[int, bool, str]]:
    return [(v.version, v.is_active, v.template_text) for v in client.iter_prompt_versions(name)]


def test_create_activate_and_compare_a_prompt(run, client, template):
    code, out, _ = run(
        "prompts", "create", "greet", "--file", template("Hello {name}\n"), "--description", "first"
    )
    assert (code, out) == (0, "created greet v1 (active)\n")
    code, out, _ = run("prompts", "create", "greet", "--file", template("Hi {name}!\n"), "--no-activate")
    assert code == 0 and "created greet v2, staged (not active)" in out
    assert "promptgauge prompts activate greet 2" in out
    assert _versions(client, "greet") == [(2, False, "Hi {name}!\n"), (1, True, "Hello {name}\n")]
    assert client.get_prompt_version("greet", 1).description == "first"

    assert run("prompts", "activate", "greet", "2")[:2] == (0, "greet v2 is active\n")
    assert client.get_prompt_version("greet").version == 2
    assert run("prompts", "activate", "greet", "1")[0] == 0  # roll back
    assert client.get_prompt_version("greet").version == 1
    code, out, _ = run("compare", "greet")
    assert code == 0 and out.splitlines()[0] == "greet"


def test_create_from_standard_input_with_a_version_and_parent(run, client):
    client.create_prompt_version("piped", "one")
    code, out, _ = run(
        "prompts",
        "create",
        "piped",
        "--file",
        "-",
        "--version",
        "5",
        "--parent",
        "1",
        stdin=b"caf\xc3\xa9 {x}",
    )
    assert (code, out) == (0, "created piped v5 (active)\n")
    created = client.get_prompt_version("piped", 5)
    assert (created.template_text, created.parent_version) == ("café {x}", 1)


def test_list_versions_and_show(run, client):
    client.create_prompt_version("beta", "b1")
    client.create_prompt_version("alpha", "Dear {name}", description="first\nsecond line")
    client.create_prompt_version("alpha", "Hi {name}, {day}", parent_version=1, activate=False)
    code, out, _ = run("prompts", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ACTIVE", "LATEST", "VERSIONS", "NEWEST", "VERSION", "(UTC)"]
    assert [line.split()[:4] for line in lines[1:]] == [["alpha", "v1", "v2", "2"], ["beta", "v1", "v1", "1"]]

    code, out, _ = run("prompts", "versions", "alpha")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["VERSION", "STATUS", "PARENT"]
    assert lines[1].split()[:2] == ["v2", "v1"]  # no status; parent v1
    assert "name, day" in lines[1]
    assert lines[2].split()[:3] == ["v1", "active", "-"] and lines[2].endswith("first second line")

    code, out, _ = run("prompts", "show", "alpha")
    assert code == 0
    assert out.splitlines()[0] == "alpha v1 (active)"
    assert out.endswith("\nDear {name}\n")
    code, out, _ = run("prompts", "show", "alpha@2")
    assert (
        out.splitlines()[0] == "alpha v2"
        and "parent:      v1" in out
        and out.endswith("\nHi {name}, {day}\n")
    )


def test_render_and_diff(run, client):
    client.create_prompt_version("mail", "Hello {name},\nwelcome to {product}.\n")
    client.create_prompt_version("mail", "Hello {name},\nwelcome aboard {product}!\nBye.\n")
    code, out, _ = run("prompts", "render", "mail@1", "--var", "name=Ada", "--var", "product=a=b")
    assert (code, out) == (0, "Hello Ada,\nwelcome to a=b.\n\n")
    assert run("prompts", "render", "mail", "--var", "name=", "--var", "product=x")[1].startswith("Hello ,")
    code, out, _ = run("prompts", "diff", "mail", "1", "2")
    assert code == 0
    assert out.splitlines() == [
        "--- mail v1",
        "+++ mail v2",
        "@@ -1,2 +1,3 @@",
        " Hello {name},",
        "-welcome to {product}.",
        "+welcome aboard {product}!",
        "+Bye.",
    ]
    assert run("prompts", "diff", "mail", "2", "2")[:2] == (0, "")


def test_json_is_the_rpc_response_in_protobufs_json_mapping(run, client, template):
    def parsed(args, message_type):
        code, out, _ = run(*args, "--json")
        assert code == 0
        return json_format.Parse(out, message_type())

    created = parsed(
        ["prompts", "create", "js", "--file", template("A {x}")], prompts_pb2.CreatePromptVersionResponse
    )
    assert created.prompt_version == client.get_prompt_version("js", 1)
    client.create_prompt_version("js", "B {x}", activate=False)
    shown = parsed(["prompts", "show", "js@2"], prompts_pb2.GetPromptVersionResponse)
    assert shown.prompt_version == client.get_prompt_version("js", 2)
    listed = parsed(["prompts", "versions", "js"], prompts_pb2.ListPromptVersionsResponse)
    assert list(listed.prompt_versions) == list(client.iter_prompt_versions("js"))
    everything = parsed(["prompts", "list"], prompts_pb2.ListPromptsResponse)
    assert list(everything.prompt_versions) == list(client.iter_prompts())
    activated = parsed(["prompts", "activate", "js", "2"], prompts_pb2.ActivatePromptVersionResponse)
    assert activated.prompt_version.is_active and activated.prompt_version.version == 2
    rendered = parsed(["prompts", "render", "js", "--var", "x=1"], prompts_pb2.RenderPromptResponse)
    assert (rendered.text, rendered.version) == ("B 1", 2)
    # Stable names, every field present (an inactive version says isActive false).
    document = json.loads(run("prompts", "show", "js@1", "--json")[1])
    assert set(document["promptVersion"]) == {
        "id",
        "name",
        "version",
        "templateText",
        "description",
        "isActive",
        "createdBy",
        "createTime",
        "variables",
        "change",
        "source",
        "labels",
    }
    assert document["promptVersion"]["isActive"] is False
    diff = json.loads(run("prompts", "diff", "js", "1", "2", "--json")[1])
    no_newline = "\\ No newline at end of file\n"
    expected = f"--- js v1\n+++ js v2\n@@ -1 +1 @@\n-A {{x}}\n{no_newline}+B {{x}}\n{no_newline}"
    assert diff == {"unifiedDiff": expected, "changedFields": []}


def test_create_with_model_config_schemas_and_source_and_show_them(run, client, template):
    config = template('{"provider": "openai", "model": "gpt-4o", "temperature": 0.3}', "model.json")
    schema = template('{"type": "object", "required": ["name"]}', "in.json")
    out_schema = template('{"type": "string"}', "out.json")
    code, out, _ = run("prompts", "create", "full", "--file", template("Hi {name}"), "--model-config", config,
                       "--input-schema", schema, "--output-schema", out_schema, "--source", "ci")
    assert (code, out) == (0, "created full v1 (active)\n")
    stored = client.get_prompt_version("full")
    assert (stored.model_config.model, stored.source) == ("gpt-4o", "ci")
    assert stored.input_schema["required"] == ["name"] and stored.output_schema["type"] == "string"
    code, out, _ = run("prompts", "show", "full")
    assert code == 0
    assert "change:      create" in out and "(ci)" in out
    assert 'model:       {"model": "gpt-4o", "provider": "openai", "temperature": 0.3}' in out
    assert 'input:       {"required": ["name"], "type": "object"}' in out  # keys sorted
    assert 'output:      {"type": "string"}' in out


@pytest.mark.parametrize(
    "flag, text, code, words",
    [
        ("--input-schema", '{"type": 5}', 2, ["INVALID_ARGUMENT", "input_schema.type"]),
        ("--input-schema", "not json", 2, ["--input-schema", "not JSON"]),
        ("--output-schema", "[1]", 2, ["--output-schema", "JSON object"]),
        ("--model-config", '{"modle": "x"}', 2, ["--model-config", "ModelConfig"]),
    ],
)
def test_bad_json_files_are_one_line_and_create_nothing(run, client, template, flag, text, code, words):
    json_file = template(text, "f.json")
    _failed(run("prompts", "create", "j", "--file", template("x"), flag, json_file), code, *words)
    assert list(client.iter_prompts()) == []


def test_edit_and_diff_through_the_server(run, client):
    client.create_prompt_version("ed", "Hello {name}, welcome.", model_config={"model": "a"})
    code, out, _ = run("prompts", "edit", "ed", "--replace", "Hello", "Hi", "--replace", "welcome", "bye",
                       "--source", "cli")
    assert (code, out) == (0, "created ed v2 from v1, active\n")
    edited = client.get_prompt_version("ed", 2)
    assert edited.template_text == "Hi {name}, bye." and edited.model_config.model == "a"
    code, out, _ = run("prompts", "diff", "ed", "1", "2")
    assert code == 0 and "-Hello {name}, welcome.\n" in out
    assert out.endswith("other fields that differ: source\n")
    _failed(run("prompts", "edit", "ed", "--replace", "nothing", "x"), 1, "FAILED_PRECONDITION",
            "edits[0]", "0 times")
    assert len(list(client.iter_prompt_versions("ed"))) == 2


def test_the_environment_gives_target_and_key(run, server, api_key, client, monkeypatch):
    client.create_prompt_version("envy", "e")
    monkeypatch.setenv("PROMPTGAUGE_TARGET", server.target)
    monkeypatch.setenv("PROMPTGAUGE_API_KEY", api_key)
    code, out, _ = run("prompts", "versions", "envy", connect=False)
    assert code == 0 and out.splitlines()[1].startswith("v1")


def test_another_accounts_prompt_is_not_found(run, other_client):
    other_client.create_prompt_version("theirs", "secret {x}")
    for args in (
        ["prompts", "show", "theirs"],
        ["prompts", "versions", "theirs"],
        ["prompts", "activate", "theirs", "1"],
        ["prompts", "render", "theirs", "--var", "x=1"],
        ["prompts", "diff", "theirs", "1", "1"],
        ["prompts", "edit", "theirs", "--replace", "secret", "x"],
    ):
        _failed(run(*args), 1, "NOT_FOUND", "prompt 'theirs' not found")
    assert "theirs" not in run("prompts", "list")[1]


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["prompts", "show", "nope"], 1, ["NOT_FOUND: prompt 'nope' not found"]),
        (["prompts", "show", "known@9"], 1, ["NOT_FOUND", "has no version 9"]),
        (["prompts", "activate", "known", "9"], 1, ["NOT_FOUND", "has no version 9"]),
        (["prompts", "diff", "known", "1", "9"], 1, ["NOT_FOUND", "has no version 9"]),
        (["prompts", "render", "known"], 2, ["INVALID_ARGUMENT", "missing template variable x"]),
        (["prompts", "versions", "nope"], 1, ["NOT_FOUND"]),
    ],
)
def test_a_server_refusal_is_one_line_and_changes_nothing(run, client, args, code, words):
    client.create_prompt_version("known", "v1 {x}")
    _failed(run(*args), code, *words)
    assert _versions(client, "known") == [(1, True, "v1 {x}")]


@pytest.mark.parametrize(
    "text, code, words",
    [
        ("bad {brace", 2, ["INVALID_ARGUMENT", "template_text"]),
        ("", 2, ["INVALID_ARGUMENT", "template_text is required"]),
        ("nul \x00", 2, ["INVALID_ARGUMENT", "NUL"]),
    ],
)
def test_a_refused_template_creates_nothing(run, client, template, text, code, words):
    client.create_prompt_version("kept", "one")
    _failed(run("prompts", "create", "kept", "--file", template(text)), code, *words)
    assert _versions(client, "kept") == [(1, True, "one")]


def test_a_duplicate_version_is_already_exists_and_changes_nothing(run, client, template):
    client.create_prompt_version("dup", "one")
    _failed(run("prompts", "create", "dup", "--file", template("two"), "--version", "1"), 1, "ALREADY_EXISTS")
    assert _versions(client, "dup") == [(1, True, "one")]


def test_the_first_version_cannot_be_staged(run, client, template):
    _failed(
        run("prompts", "create", "fresh", "--file", template("x"), "--no-activate"), 1, "FAILED_PRECONDITION"
    )
    assert "fresh" not in run("prompts", "list")[1]


def test_a_file_that_cannot_be_read_sends_nothing(run, client, tmp_path):
    _failed(
        run("prompts", "create", "unread", "--file", str(tmp_path / "none.txt")),
        1,
        "--file=",
        "none.txt: cannot read it",
    )
    binary = tmp_path / "latin1.txt"
    binary.write_bytes(b"caf\xe9")
    _failed(run("prompts", "create", "unread", "--file", str(binary)), 1, "is not UTF-8 text")
    _failed(run("prompts", "create", "unread", "--file", str(tmp_path)), 1, "cannot read it")
    assert "unread" not in run("prompts", "list")[1]


def test_the_commands_run_as_a_real_program(server, api_key, tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("From a file: {x}")
    env = {"PATH": "/usr/bin:/bin", "PROMPTGAUGE_TARGET": server.target, "PROMPTGAUGE_API_KEY": api_key}

    def program(*args):
        return subprocess.run(
            [sys.executable, "-m", "promptgauge.server.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = program("prompts", "create", "real", "--file", str(path))
    assert (created.returncode, created.stdout) == (0, "created real v1 (active)\n"), created.stderr
    rendered = program("prompts", "render", "real", "--var", "x=yes")
    assert (rendered.returncode, rendered.stdout) == (0, "From a file: yes\n")
    missing = program("prompts", "show", "real@2")
    assert missing.returncode == 1 and missing.stdout == "" and len(missing.stderr.splitlines()) == 1


def test_lists_follow_every_page(run, client):
    for n in range(55):  # more than one page of the server's default 50
        client.create_prompt_version("long", f"v{n + 1}")
    client.create_prompt_version("short", "s")
    code, out, _ = run("prompts", "versions", "long")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == [f"v{n}" for n in range(55, 0, -1)]
    assert run("prompts", "list")[1].splitlines()[1].split()[:4] == ["long", "v55", "v55", "55"]
    assert len(json.loads(run("prompts", "list", "--json")[1])["promptVersions"]) == 56


def test_label_unlabel_and_history_answer_who_moved_production(run, client):
    client.create_prompt_version("rel", "one")
    client.create_prompt_version("rel", "two", activate=False)
    code, out, _ = run("prompts", "label", "rel", "production", "1")
    assert (code, out) == (0, "rel production -> v1\n")
    assert run("prompts", "label", "rel", "production", "2")[0] == 0
    assert client.get_prompt_version("rel", label="production").version == 2
    assert "labels:      production" in run("prompts", "show", "rel@2")[1].splitlines()
    code, out, _ = run("prompts", "history", "rel")
    assert code == 0
    lines = out.splitlines()
    key_id = client.get_prompt_version("rel", 1).created_by
    assert lines[0].split() == ["SEQUENCE", "WHEN", "(UTC)", "CHANGE", "WHAT", "BY", "KEY"]
    assert "label set" in lines[1] and "production: v1 -> v2" in lines[1] and key_id in lines[1]
    assert "production: - -> v1" in lines[2]
    assert len(lines) == 1 + 5  # created v1, activated v1, created v2, and the two label moves
    code, out, _ = run("prompts", "history", "rel", "--json")
    events = json_format.Parse(out, prompts_pb2.ListPromptHistoryResponse()).events
    assert list(events) == list(client.iter_prompt_history("rel"))
    assert run("prompts", "unlabel", "rel", "production")[0] == 0
    _failed(run("prompts", "unlabel", "rel", "production"), 1, "NOT_FOUND", "production")
    _failed(run("prompts", "label", "rel", "latest", "1"), 2, "reserved")
    _failed(run("prompts", "history", "no-such-prompt"), 1, "NOT_FOUND")


def test_show_and_render_by_label(run, client):
    client.create_prompt_version("lab", "one {x}")
    client.create_prompt_version("lab", "two {x}", activate=False)
    client.set_prompt_label("lab", "staging", 2)
    code, out, _ = run("prompts", "show", "lab:staging")
    assert code == 0 and out.splitlines()[0] == "lab v2" and out.endswith("two {x}\n")
    assert run("prompts", "show", "lab:latest")[1].splitlines()[0] == "lab v2"
    assert run("prompts", "show", "lab:active")[1].splitlines()[0] == "lab v1 (active)"
    assert run("prompts", "render", "lab:staging", "--var", "x=A") == (0, "two A\n", "")
    shown = json_format.Parse(run("prompts", "show", "lab:staging", "--json")[1],
                              prompts_pb2.GetPromptVersionResponse())
    assert shown.prompt_version == client.get_prompt_version("lab", label="staging")
    _failed(run("prompts", "show", "lab:nolabel"), 1, "NOT_FOUND", "nolabel")


def test_split_sets_and_clears_and_resolve_follows(run, client):
    client.create_prompt_version("ab", "one")
    client.create_prompt_version("ab", "two", activate=False)
    code, out, _ = run("prompts", "split", "ab", "1=90", "2=10")
    assert (code, out) == (0, "ab split: v1 90%, v2 10%\n")
    chosen = {client.resolve_prompt("ab", subject=f"user-{i}").prompt_version.version for i in range(200)}
    assert chosen == {1, 2}
    document = json.loads(run("prompts", "split", "ab", "1=1", "2=1", "--json")[1])
    assert [(a["version"], a["weight"]) for a in document["split"]["arms"]] == [(1, 1), (2, 1)]
    assert run("prompts", "split", "ab", "--clear") == (
        0, "ab split cleared: callers without a label get the active version\n", ""
    )
    assert {client.resolve_prompt("ab", subject=f"user-{i}").prompt_version.version for i in range(50)} == {1}
    kinds = [e.kind for e in client.iter_prompt_history("ab")][:3]
    assert kinds == [prompts_pb2.EVENT_KIND_SPLIT_CLEARED, prompts_pb2.EVENT_KIND_SPLIT_SET,
                     prompts_pb2.EVENT_KIND_SPLIT_SET]


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["ab"], 2, ["VERSION=WEIGHT", "--clear"]),
        (["ab", "1=1", "--clear"], 2, ["not both"]),
        (["ab", "9=1"], 1, ["NOT_FOUND", "no version 9"]),
        (["ab", "1=0"], 2, ["INVALID_ARGUMENT"]),
        (["none", "1=1"], 1, ["NOT_FOUND", "none"]),
        (["ab", "--clear"], 1, ["NOT_FOUND", "no traffic split"]),
    ],
)
def test_a_refused_split_is_one_line_and_changes_nothing(run, client, args, code, words):
    client.create_prompt_version("ab", "one")
    before = list(client.iter_prompt_history("ab"))
    _failed(run("prompts", "split", *args), code, *words)
    assert list(client.iter_prompt_history("ab")) == before


def test_compare_since_with_a_baseline_as_json_and_as_a_table(run, client):
    import datetime

    from conftest import in_batches, new_trace, usage_record

    from promptgauge.v1 import analytics_pb2

    client.create_prompt_version("judged", "one")
    client.create_prompt_version("judged", "two")  # active
    now = datetime.datetime.now(datetime.timezone.utc)
    usage, outcomes = [], []
    # v1: 89 of 100 succeed, v2: 90 of 125, in the last day; v1 also won a
    # week ago, outside --since 24h.
    runs = ((1, 100, 89, now), (2, 125, 90, now), (1, 50, 50, now - datetime.timedelta(days=7)))
    for version, n, wins, ended in runs:
        for i in range(n):
            trace = new_trace()
            usage.append(usage_record("judged", version, trace))
            outcome = analytics_pb2.TraceOutcome(trace_id=trace, success=i < wins, duration_ms=100.0 + i)
            outcome.end_time.FromDatetime(ended.replace(tzinfo=None) - datetime.timedelta(minutes=1))
            outcomes.append(outcome)
    client.stream_usage(in_batches(usage, 100))
    client.stream_trace_outcomes(in_batches(outcomes, 100))
    code, out, _ = run("compare", "judged", "--since", "24h", "--baseline", "1", "--json")
    assert code == 0
    document = json.loads(out)
    v1, v2 = document["versions"]
    assert (v1["version"], v1["totalTraces"], v1["isBaseline"], v1["isActive"]) == (1, "100", True, False)
    assert (v2["totalTraces"], v2["isActive"], v2["vsBaseline"]["baselineVersion"]) == ("125", True, 1)
    assert v2["vsBaseline"]["significant"] is True
    assert abs(v2["vsBaseline"]["successRatePValue"] - 0.0016786614879627) < 1e-9
    code, out, _ = run("compare", "judged", "--since", "24h", "--baseline", "1")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "judged"
    assert "baseline" in lines[2] and "active" in lines[3]
    assert lines[3].rstrip().endswith("-17.0 pts p=0.0017 *")
    assert lines[-1].startswith("* significant at 95%")
    # All time: v1's week-old runs count too.
    code, out, _ = run("compare", "judged", "--json")
    assert json.loads(out)["versions"][0]["totalTraces"] == "150"


def test_compare_of_a_missing_baseline_is_one_line(run, client):
    client.create_prompt_version("lonely", "one")
    _failed(run("compare", "lonely", "--baseline", "4"), 1, "NOT_FOUND", "baseline_version")
