import html
import time
from html.parser import HTMLParser

import pytest
from django.core.exceptions import ValidationError
from django.utils.safestring import SafeString

from lms.chat.text import check_message_text, message_preview, render_message

REL = 'rel="noopener noreferrer nofollow ugc"'
ALLOWED_TAGS = {"p", "br", "strong", "em", "code", "pre", "a"}


class _Elements(HTMLParser):
    """The tags and attributes a browser would build from the output, and its visible text."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def error_of(body: str, max_length: int = 4000) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        check_message_text(body, max_length=max_length)
    return caught.value


# --- render_message: the Markdown subset --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("plain", "<p>plain</p>"),
        ("**bold**", "<p><strong>bold</strong></p>"),
        ("*italic*", "<p><em>italic</em></p>"),
        ("_italic_", "<p><em>italic</em></p>"),
        ("`code`", "<p><code>code</code></p>"),
        ("```\nx = 1\n```", "<pre><code>x = 1\n</code></pre>"),
        ("```python\nx = 1\n```", "<pre><code>x = 1\n</code></pre>"),
        ("one\ntwo", "<p>one<br>\ntwo</p>"),
        ("one\n\ntwo", "<p>one</p>\n<p>two</p>"),
        (r"\*not italic\*", "<p>*not italic*</p>"),
        ("[docs](https://docs.example/a)", f'<p><a href="https://docs.example/a" {REL}>docs</a></p>'),
        ("[**bold** link](https://a.example)", f'<p><a href="https://a.example" {REL}><strong>bold</strong> link</a></p>'),
    ],
)
def test_render_message_markdown_feature_renders_expected_html(body, expected):
    assert render_message(body) == expected


@pytest.mark.parametrize(
    "body",
    ["# Heading", "- item", "1. item", "> quote", "![alt](https://img.example/x.png)", "| a | b |\n|---|---|\n| 1 | 2 |", "~~strike~~", "---"],
)
def test_render_message_unsupported_markdown_stays_text(body):
    elements = _Elements(render_message(body)).elements

    assert {tag for tag, _ in elements} <= {"p", "br", "a"}
    assert not any(tag in {"h1", "ul", "ol", "li", "blockquote", "img", "table", "del", "s", "hr"} for tag, _ in elements)


def test_render_message_image_syntax_becomes_plain_link_not_image():
    assert render_message("![alt](https://img.example/x.png)") == f'<p>!<a href="https://img.example/x.png" {REL}>alt</a></p>'


def test_render_message_returns_safe_string():
    assert isinstance(render_message("hi"), SafeString)


def test_render_message_entities_show_as_typed():
    assert render_message("&amp; &lt;b&gt;") == "<p>&amp;amp; &amp;lt;b&amp;gt;</p>"


# --- render_message: links -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("see https://example.com/path?q=1", f'<p>see <a href="https://example.com/path?q=1" {REL}>https://example.com/path?q=1</a></p>'),
        ("www.example.org", f'<p><a href="http://www.example.org" {REL}>www.example.org</a></p>'),
        ("mail ana@example.com", f'<p>mail <a href="mailto:ana@example.com" {REL}>ana@example.com</a></p>'),
        ("go to https://example.com/a.", f'<p>go to <a href="https://example.com/a" {REL}>https://example.com/a</a>.</p>'),
        ("(see https://example.com/a)", f'<p>(see <a href="https://example.com/a" {REL}>https://example.com/a</a>)</p>'),
        ("http://localhost:8000/x", f'<p><a href="http://localhost:8000/x" {REL}>http://localhost:8000/x</a></p>'),
        ("[write](mailto:ana@example.com)", f'<p><a href="mailto:ana@example.com" {REL}>write</a></p>'),
    ],
)
def test_render_message_autolinks_bare_urls(body, expected):
    assert render_message(body) == expected


def test_render_message_url_in_code_is_not_linked():
    assert render_message("`https://example.com`") == "<p><code>https://example.com</code></p>"
    assert render_message("```\nhttps://example.com\n```") == "<pre><code>https://example.com\n</code></pre>"


@pytest.mark.parametrize("body", ["README.md", "setup.py", "example.com", "ftp://files.example/a", "//example.com/a"])
def test_render_message_does_not_link_file_names_or_other_schemes(body):
    assert render_message(body) == f"<p>{body}</p>"


@pytest.mark.parametrize("body", ["[x](/accounts/logout/)", "[x](//evil.example)", "[x](#top)", "[x](ftp://files.example)"])
def test_render_message_relative_and_other_scheme_links_keep_only_text(body):
    assert render_message(body) == "<p>x</p>"


def test_render_message_url_with_bidi_override_is_not_linked():
    body = "https://example.com/\u202etxt.exe"

    assert render_message(body) == f"<p>{body}</p>"


def test_render_message_links_carry_rel_and_no_target():
    elements = _Elements(render_message("[a](https://a.example) http://b.example [c](mailto:c@example.com)")).elements

    links = [attrs for tag, attrs in elements if tag == "a"]
    assert [link["href"] for link in links] == ["https://a.example", "http://b.example", "mailto:c@example.com"]
    assert all(link == {"href": link["href"], "rel": "noopener noreferrer nofollow ugc"} for link in links)


def test_render_message_links_drop_their_title():
    """A link's title (`[a](url "title")`) is a tooltip nobody reviews: it is dropped, as the
    allow-list says, and no other attribute of any element survives either."""
    elements = _Elements(render_message('[a](https://a.example "Click me") ![i](https://b.example/i.png "t")')).elements
    assert [set(attrs) for tag, attrs in elements if tag == "a"] == [{"href", "rel"}, {"href", "rel"}]
    assert all(not attrs for tag, attrs in elements if tag not in {"a", "span"})


# --- render_message: nothing a user types becomes markup ----------------------------------------


@pytest.mark.parametrize(
    ("body", "visible"),
    [
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
        ("[x](javascript:alert(1))", "x"),
        ("[x](JaVaScRiPt:alert(1))", "x"),
        ("[x](java\tscript:alert(1))", "[x](java\tscript:alert(1))"),
        ("[x](&#106;avascript:alert(1))", "x"),
        ("[x]( javascript:alert(1))", "x"),
        ("[x](<javascript:alert(1)>)", "x"),
        ("[x](data:text/html;base64,PHNjcmlwdD4=)", "x"),
        ("[x](vbscript:msgbox)", "x"),
        ("[x](file:///etc/passwd)", "x"),
        ('<a href="javascript:alert(1)">x</a>', '<a href="javascript:alert(1)">x</a>'),
        ("<b>bold</b>", "<b>bold</b>"),
        ('<iframe src="https://evil.example"></iframe>', '<iframe src="https://evil.example"></iframe>'),
        ('"><svg onload=alert(1)>', '"><svg onload=alert(1)>'),
        ("`<script>`", "<script>"),
        ("```\n</pre><script>alert(1)</script>\n```", "</pre><script>alert(1)</script>"),
        ('[a](https://ok.example/"onmouseover="alert(1))', "a"),
        ("<!-- comment --> x", "<!-- comment --> x"),
    ],
)
def test_render_message_user_html_and_bad_links_never_become_markup(body, visible):
    output = render_message(body)
    parsed = _Elements(output)

    assert "<script" not in output.lower()
    assert "<img" not in output.lower()
    assert "<iframe" not in output.lower()
    assert "<svg" not in output.lower()
    assert {tag for tag, _ in parsed.elements} <= ALLOWED_TAGS
    for tag, attrs in parsed.elements:
        assert set(attrs) <= ({"href", "rel"} if tag == "a" else set())
        if "href" in attrs:
            assert attrs["href"].startswith(("https://", "http://", "mailto:"))
            assert "javascript:" not in html.unescape(attrs["href"]).lower()
            assert "data:" not in attrs["href"].lower()
    assert visible in parsed.text


@pytest.mark.parametrize(
    "body",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
    ],
)
def test_render_message_refused_link_drops_its_target_entirely(body):
    output = render_message(body).lower()

    assert output == "<p>x</p>"
    assert "javascript:" not in output and "data:" not in output and "vbscript:" not in output


def test_render_message_escapes_raw_html_as_text():
    assert render_message("<script>alert(1)</script>") == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert render_message("`<script>`") == "<p><code>&lt;script&gt;</code></p>"


def test_render_message_quote_in_link_cannot_break_out_of_href():
    output = render_message('[a](https://ok.example/"onmouseover="alert(1))')

    assert output == f'<p><a href="https://ok.example/%22onmouseover=%22alert(1)" {REL}>a</a></p>'


def test_render_message_bidi_override_stays_inside_block():
    output = render_message("abc\u202edef")

    assert output == "<p>abc\u202edef</p>"


@pytest.mark.parametrize(
    "body",
    [
        "*" * 4000,
        "[" * 4000,
        "_" * 4000,
        "`" * 4000,
        "a`" * 2000,
        "*a **b " * 571,
        "_a" * 2000,
        "[a](" * 1000,
        "[" * 2000 + "]" * 2000,
        "http://" + "a." * 1996,
        "a@" * 2000,
        "*[_`<" * 800,
        "```\n" * 1000,
        "\\" * 4000,
    ],
)
def test_render_message_pathological_input_renders_fast(body):
    body = body[:4000]
    start = time.perf_counter()
    render_message(body)
    message_preview(body)
    assert time.perf_counter() - start < 1.0


# --- check_message_text ------------------------------------------------------------------------


def test_check_message_text_empty_refused():
    error = error_of("")

    assert error.code == "empty"
    assert error.messages == ["Write a message first."]


@pytest.mark.parametrize("body", [" ", "\n\n\t ", "\r\n", "\u200b", "\u00a0\u2028"])
def test_check_message_text_whitespace_only_refused(body):
    assert error_of(body).code == "empty"


def test_check_message_text_strips_surrounding_whitespace():
    assert check_message_text("  \n hi there \n\t", max_length=10) == "hi there"


def test_check_message_text_exactly_max_length_accepted():
    assert check_message_text("a" * 4000, max_length=4000) == "a" * 4000


def test_check_message_text_over_max_length_refused_with_counts():
    error = error_of("a" * 4012)

    assert error.code == "too_long"
    assert error.messages == ["Keep it to 4,000 characters (this one has 4,012)."]


def test_check_message_text_one_over_max_length_refused():
    assert error_of("a" * 4001).messages == ["Keep it to 4,000 characters (this one has 4,001)."]


def test_check_message_text_counts_length_after_normalising():
    body = "a\r\n" * 999 + "ab"  # 2,999 as typed, 2,000 once "\r\n" is "\n"

    assert len(check_message_text(body, max_length=2000)) == 2000


@pytest.mark.parametrize("body", ["a\x00b", "a\x07b", "a\x1bb", "a\x0bb", "a\x0cb", "a\x7fb", "a\x85b", "a\x9bb"])
def test_check_message_text_control_characters_refused(body):
    error = error_of(body)

    assert error.code == "control_characters"
    assert error.messages == ["Remove the control characters from the message."]


def test_check_message_text_tab_and_newline_kept():
    assert check_message_text("a\tb\nc", max_length=10) == "a\tb\nc"


@pytest.mark.parametrize("body", ["a\r\nb\rc", "a\u2028b\u2029c"])
def test_check_message_text_line_endings_normalised(body):
    assert check_message_text(body, max_length=10) == "a\nb\nc"


def test_check_message_text_nfc_normalised():
    assert check_message_text("caf" + "e\u0301", max_length=10) == "caf\u00e9"


def test_check_message_text_zalgo_refused():
    assert error_of("he" + "\u0301\u0316\u0344" * 11 + "llo").code == "invalid_unicode"


def test_check_message_text_a_few_combining_marks_accepted():
    body = "Tiê\u0301ng Vie\u0323\u0302t"

    assert check_message_text(body, max_length=100) == "Tiếng Việt"


def test_check_message_text_lone_surrogate_refused():
    assert error_of("a\ud800b").code == "invalid_unicode"


@pytest.mark.parametrize(
    "body",
    [
        "مرحبا بالجميع",
        "שלום לכולם",
        "Hi 👋🏽 👩‍💻 🇵🇹 1️⃣",
        "abc\u202edef\u202c and \u2067isolated\u2069",
    ],
)
def test_check_message_text_rtl_emoji_and_bidi_accepted_unchanged(body):
    assert check_message_text(body, max_length=100) == body


# --- message_preview --------------------------------------------------------------------------


def test_message_preview_collapses_whitespace():
    assert message_preview("one  \n\n two\tthree") == "one two three"


def test_message_preview_short_text_unchanged():
    assert message_preview("hello", length=5) == "hello"


def test_message_preview_cuts_with_ellipsis():
    assert message_preview("x" * 100, length=10) == "x" * 9 + "…"


def test_message_preview_cuts_at_word_near_the_end():
    assert message_preview("alpha beta gamma delta", length=15) == "alpha beta…"


def test_message_preview_removes_markdown_markers():
    body = "**Bold** _it_ `code` [link](https://a.example) https://b.example\n```\nblock\n```"

    assert message_preview(body) == "Bold it code link https://b.example block"


def test_message_preview_keeps_html_as_plain_text():
    assert message_preview("<b>hi</b>") == "<b>hi</b>"


def test_message_preview_drops_bidi_controls():
    assert message_preview("abc\u202edef\u2066g\u2069") == "abcdefg"


def test_message_preview_does_not_split_combining_marks():
    assert message_preview("ab" + "e\u0301" * 10, length=4) == "ab…"
