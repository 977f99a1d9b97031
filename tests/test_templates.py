"""Templates without a server: parsing `{variable}`, `{{` and `}}`, errors that name
the offset, variables in order of first appearance, and rendering, whose size
is checked before the text is built."""

import shutil
import subprocess
import tracemalloc

import pytest

from promptgauge.server import templates
from promptgauge.server.errors import InvalidArgument, ResourceExhausted


def _parse_error(text: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        templates.parse(text)
    assert caught.value.field == "template_text"
    assert caught.value.reason == "INVALID_TEMPLATE"
    return caught.value


@pytest.mark.parametrize(
    ("text", "variables", "rendered"),
    [
        ("", [], ""),
        ("plain text", [], "plain text"),
        ("{a}", ["a"], "A"),
        ("Hi {name}, re: {topic}.", ["name", "topic"], "Hi N, re: T."),
        ("{{a}}", [], "{a}"),
        ("{{{a}}}", ["a"], "{A}"),
        ("{{}}", [], "{}"),
        ("}}{{", [], "}{"),
        ("{_}{a_1}{B}", ["_", "a_1", "B"], "_valuea_1valueB"),
        ("{b}{a}{b}{c}{a}", ["b", "a", "c"], "BABcA"),
        ("ünï{a}cödé", ["a"], "ünïAcödé"),
    ],
)
def test_parse_and_render(text, variables, rendered):
    values = {"a": "A", "b": "B", "c": "c", "name": "N", "topic": "T",
              "_": "_value", "a_1": "a_1value", "B": "B"}
    template = templates.parse(text)
    assert template.variables == variables
    assert template.render(values) == rendered


def test_literal_and_variable_parts_alternate():
    assert templates.parse("x{a}{b}y").parts == ("x", "a", "", "b", "y")


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("{", 0),
        ("abc{", 3),
        ("{}", 0),
        ("ab {1x}", 3),
        ("{a b}", 0),
        ("{a-b}", 0),
        ("{é}", 0),
        ("{{ {x", 3),
        ("{a{b}", 0),
        ("ok {a} then { b}", 12),
        ("ü{", 1),
    ],
)
def test_a_brace_that_opens_no_placeholder_is_named_by_its_offset(text, offset):
    error = _parse_error(text)
    assert f"a '{{' at offset {offset} that opens no {{variable}} placeholder" in error.message
    assert "write '{{' for a literal brace" in error.message


@pytest.mark.parametrize(("text", "offset"), [("}", 0), ("abc}", 3), ("{a}}", 3), ("}}}", 2), ("a}b", 1)])
def test_an_unmatched_closing_brace_is_named_by_its_offset(text, offset):
    error = _parse_error(text)
    assert f"an unmatched '}}' at offset {offset}" in error.message
    assert "write '}}' for a literal brace" in error.message


def test_render_ignores_values_the_template_does_not_use():
    assert templates.parse("{a}").render({"a": "1", "unused": "2"}) == "1"


def test_render_does_not_read_placeholders_inside_values():
    assert templates.parse("{a}{b}").render({"a": "{b}", "b": "}}"}) == "{b}}}"


def _render_error(template: templates.Template, values: dict, max_bytes=None):
    with pytest.raises((InvalidArgument, ResourceExhausted)) as caught:
        template.render(values, max_bytes)
    assert caught.value.field == "variables"
    return caught.value


def test_a_missing_variable_is_named():
    error = _render_error(templates.parse("Hi {name}, {topic}"), {"topic": "x"})
    assert isinstance(error, InvalidArgument)
    assert error.reason == "MISSING_VARIABLE"
    assert error.message == "missing template variable name"


def test_missing_variables_are_named_in_order_of_first_appearance():
    error = _render_error(templates.parse("{c}{a}{b}{c}{a}"), {"b": "x"})
    assert error.message == "missing template variables c, a"


def test_many_missing_variables_are_named_up_to_a_bound_and_counted():
    names = [f"variable_{i:04d}" for i in range(2000)]
    error = _render_error(templates.parse("".join(f"{{{n}}}" for n in names)), {})
    listed, _, rest = error.message.removeprefix("missing template variables ").partition(" and ")
    shown = listed.split(", ")
    assert shown == names[: len(shown)]
    assert rest == f"{len(names) - len(shown)} more"
    assert len(error.message) < 600


def test_a_very_long_missing_name_is_shortened():
    name = "n" * 5000
    error = _render_error(templates.parse(f"{{{name}}}"), {})
    assert error.message == "missing template variable " + "n" * 40 + "..."


def test_the_rendered_size_is_counted_in_utf8_bytes_against_the_limit():
    template = templates.parse("é{a}é")  # 2 + 3 * 2 + 2 bytes with a = "€€" (3 bytes each)
    assert template.render({"a": "€€"}, max_bytes=10) == "é€€é"
    error = _render_error(template, {"a": "€€"}, max_bytes=9)
    assert isinstance(error, ResourceExhausted)
    assert error.reason == "RENDERED_TOO_LARGE"
    assert error.message == "the rendered text would be 10 bytes; the limit is 9"


def test_an_oversized_render_is_refused_before_the_text_is_built():
    # 20,000 copies of a 10 kB value would be a 200 MB string; the refusal
    # must come from the sizes alone, so memory stays far below that.
    template = templates.parse("{v}" * 20_000)
    values = {"v": "x" * 10_000}
    tracemalloc.start()
    try:
        error = _render_error(template, values, max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.message == "the rendered text would be 200000000 bytes; the limit is 1000000"
    assert peak < 5_000_000, f"render allocated {peak} bytes before refusing"


def test_a_missing_variable_is_reported_before_the_size():
    error = _render_error(templates.parse("{a}{b}"), {"a": "x" * 100}, max_bytes=10)
    assert isinstance(error, InvalidArgument)


DIFF_CASES = [
    ("a\nb\nc\n", "a\nB\nc\nd\n"),
    ("one line", "one line\n"),
    ("same\n", "same\n"),
    ("", "new\n"),
    ("".join(f"line {i}\n" for i in range(30)) + "tail",
     "".join(f"line {i}\n" for i in range(30) if i != 12) + "tail!"),
]


@pytest.mark.skipif(shutil.which("diff") is None, reason="no diff(1) on this machine to compare with")
@pytest.mark.parametrize("before, after", DIFF_CASES)
def test_unified_diff_is_what_diff_u_writes(tmp_path, before, after):
    (tmp_path / "a").write_text(before)
    (tmp_path / "b").write_text(after)
    expected = subprocess.run(
        ["diff", "-u", "--label", "p v1", "--label", "p v2", str(tmp_path / "a"), str(tmp_path / "b")],
        capture_output=True, text=True,
    ).stdout
    assert templates.unified_diff(before, after, "p v1", "p v2") == expected
