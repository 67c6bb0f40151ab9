"""Message text: the one place where what a member typed is checked and turned into HTML.

Two layers stand between a message and another member's page:

1. markdown-it-py with raw HTML off and only a small inline subset enabled, so anything a user
   types that looks like HTML comes out escaped, and links are built by the parser, not by us;
2. nh3 (ammonia) with an allow-list of tags and attributes and only http, https and mailto
   links, so even a parser bug cannot put a script, an event handler or a `javascript:` URL
   on the page.

Everything that shows a message (pages, pushed fragments, exports) must go through
`render_message`, and nothing else may `mark_safe` message text.
"""

import re
import unicodedata
from urllib.parse import unquote

import nh3
from django.core.exceptions import ValidationError
from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

# --- Checking what was typed -------------------------------------------------------------------

# C0 and C1 controls, and DEL, except "\n" and "\t" ("\r" is gone by the time this runs).
# They are invisible, can corrupt terminals and logs an export ends up in, and PostgreSQL
# refuses NUL outright. U+0085 (NEL) is refused too rather than read as a line break: browsers
# send CRLF, and a stray NEL is almost always Windows-1252 "…" decoded as Latin-1.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone surrogates cannot be encoded as UTF-8 (the database and every response would fail);
# they only arrive through escapes such as JSON's "\ud800".
_SURROGATES = re.compile(r"[\ud800-\udfff]")
# The Unicode line and paragraph separators count as line endings, like "\r\n" and "\r".
_LINE_ENDINGS = re.compile(r"\r\n?|[\u2028\u2029]")
# "Zalgo" text stacks combining marks until they spill over neighbouring messages. Real
# scripts (and emoji sequences) need a handful in a row; 30 is far beyond any of them.
MAX_COMBINING_RUN = 30


def check_message_text(body: str, *, max_length: int) -> str:
    """The message as it will be stored: line endings "\n", trimmed, NFC; or a ValidationError.

    Error codes: "empty", "too_long", "control_characters", "invalid_unicode".
    Bidi controls (U+202A–U+202E, U+2066–U+2069) are allowed; `render_message` explains how
    their effect is kept inside the message.
    """
    if _SURROGATES.search(body):
        raise ValidationError(
            gettext("The message contains characters that are not valid text. Please type it again."),
            code="invalid_unicode",
        )
    text = unicodedata.normalize("NFC", _LINE_ENDINGS.sub("\n", body)).strip()
    if all(character.isspace() or unicodedata.category(character) == "Cf" for character in text):
        # Also catches messages made only of zero-width and other invisible format characters.
        raise ValidationError(gettext("Write a message first."), code="empty")
    if _CONTROL_CHARACTERS.search(text):
        raise ValidationError(gettext("Remove the control characters from the message."), code="control_characters")
    if _longest_combining_run(text) > MAX_COMBINING_RUN:
        raise ValidationError(
            gettext("The message stacks too many accents or marks on one character."),
            code="invalid_unicode",
        )
    if len(text) > max_length:
        message = ngettext(
            "Keep it to %(limit)s character (this one has %(length)s).",
            "Keep it to %(limit)s characters (this one has %(length)s).",
            max_length,
        )
        params = {
            "limit": number_format(max_length, force_grouping=True),
            "length": number_format(len(text), force_grouping=True),
        }
        raise ValidationError(message, code="too_long", params=params)
    return text


def _longest_combining_run(text: str) -> int:
    longest = run = 0
    for character in text:
        run = run + 1 if unicodedata.category(character).startswith("M") else 0
        longest = max(longest, run)
    return longest


# --- Rendering ---------------------------------------------------------------------------------

# "zero" starts with every rule off; turn on only the subset we support. Not enabled, on
# purpose: html_block/html_inline (raw HTML), image, autolink ("<https://…>", linkify covers
# it), entity (so "&lt;" shows as typed), heading, list, table, blockquote, reference.
_markdown = MarkdownIt("zero", {"html": False, "linkify": True, "breaks": True, "typographer": False})
_markdown.enable(["emphasis", "backticks", "fence", "link", "linkify", "newline", "escape", "paragraph", "text"])
# Link checks happen in `_unlink_unsafe` below, so that a refused `[text](javascript:…)` keeps its
# text instead of falling back to the raw Markdown. markdown-it's own check would leave the URL
# on show; nh3 remains as the second layer either way.
_markdown.validateLink = lambda url: True

# Absolute http(s) URLs with a host, and mailto. No relative or protocol-relative links: a chat
# message has no business pointing at "/accounts/logout/". `href` has been through markdown-it's
# normalizeLink: entities decoded, then whitespace and controls percent-encoded, so
# "&#106;avascript:" and "java\tscript:" cannot pass as anything but what they are.
_SAFE_HREF = re.compile(r"(?:https?://[^/?#\s]|mailto:[^\s])", re.IGNORECASE)
# Bidi overrides inside a link's address would let its visible text lie about where it goes
# ("…/\u202etxt.exe" shows as "…/exe.txt").
_BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Bare links need a scheme, "www." or an "@": linkify's fuzzy matching would also link every
# "README.md" and "setup.py" (both real TLDs) in a programming course.
_AUTOLINK_TEXT = re.compile(r"(?:https?://|mailto:|www\.)", re.IGNORECASE)


def _is_safe_link(token, text: str) -> bool:
    href = token.attrGet("href") or ""
    if not _SAFE_HREF.match(href) or _BIDI_CONTROLS.search(unquote(href)):
        return False
    if token.markup == "linkify":
        return bool(_AUTOLINK_TEXT.match(text)) or href.lower().startswith("mailto:")
    return True


def _unlink_unsafe(state: StateCore) -> None:
    """Replace each link we do not allow by its text (Markdown links cannot nest)."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children, drop_close = [], False
        for index, token in enumerate(block.children):
            if token.type == "link_open":
                following = block.children[index + 1] if index + 1 < len(block.children) else None
                text = following.content if following is not None and following.type == "text" else ""
                if not _is_safe_link(token, text):
                    drop_close = True
                    continue
            elif token.type == "link_close" and drop_close:
                drop_close = False
                continue
            children.append(token)
        block.children = children


_markdown.core.ruler.after("linkify", "unlink_unsafe", _unlink_unsafe)

# "@username" (Django usernames: letters, digits and @.+-_, ending on a letter or digit), not
# preceded by a word character, "." or "@": "ana@example.com" mentions nobody.
_MENTION = re.compile(r"(?<![\w.@])@(\w(?:[\w.+-]*\w)?)")


def _mark_mentions(state: StateCore) -> None:
    """Collect @names in text outside code and links (into env["found"]) and, for the names in
    env["mentions"], wrap them in <span class="mention">."""
    wanted = state.env.get("mentions") or frozenset()
    found = state.env.setdefault("found", set())
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children, in_link = [], 0
        for token in block.children:
            if token.type == "link_open":
                in_link += 1
            elif token.type == "link_close":
                in_link -= 1
            if token.type != "text" or in_link or "@" not in token.content:
                children.append(token)
                continue
            position = 0
            for match in _MENTION.finditer(token.content):
                name = match.group(1).lower()
                found.add(name)
                if name not in wanted:
                    continue
                if match.start() > position:
                    children.append(_text_token(token.content[position : match.start()]))
                span = Token("html_inline", "", 0)
                span.content = f'<span class="mention">@{escape(match.group(1))}</span>'
                children.append(span)
                position = match.end()
            if position < len(token.content):
                children.append(_text_token(token.content[position:]))
        block.children = children


def _text_token(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


_markdown.core.ruler.after("unlink_unsafe", "mentions", _mark_mentions)


def find_mentions(body: str) -> set[str]:
    """The lower-cased @names in a message, outside code and links ("all" included)."""
    env: dict = {}
    _markdown.parse(body, env)
    return env.get("found", set())

# The allow-list is exactly what the rules above can produce; no `class` (the fence's
# "language-xxx" is dropped: nothing highlights code), no `title`, no `target`.
_cleaner = nh3.Cleaner(
    tags={"p", "br", "strong", "em", "code", "pre", "a", "span"},
    clean_content_tags=set(),
    # "*": none on every element; without it nh3 keeps its defaults there, `lang` and `title`.
    attributes={"a": {"href"}, "*": set()},
    allowed_classes={"span": {"mention"}},
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow ugc",
)


def render_message(body: str, *, mentions: frozenset[str] = frozenset()) -> SafeString:
    """Safe HTML for a message that passed `check_message_text`: block elements (`<p>`, `<pre>`) only.

    Put it in a block container that isolates bidi text, e.g.
    `<div class="message-text" dir="auto">{{ message.body_html|safe }}</div>` (`|safe` only because
    a stored copy loses the SafeString mark; it must come from here): `dir` gives the element
    `unicode-bidi: isolate`, so a right-to-left override typed in a message cannot reorder the
    author's name, the time or the next message. The output is balanced (nh3 closes every tag).
    """
    return mark_safe(_cleaner.clean(_markdown.render(body, {"mentions": mentions})).rstrip("\n"))


# --- Preview -----------------------------------------------------------------------------------


def message_preview(body: str, length: int = 80) -> str:
    """Plain text on one line, at most `length` characters ("…" included); the template escapes it.

    Markdown markers go (links keep their text), whitespace collapses to single spaces, and bidi
    controls are dropped: a preview sits inline beside names and counts, with no block to stop them.
    """
    text = _BIDI_CONTROLS.sub("", " ".join(_plain_text(body).split()))
    if len(text) <= length:
        return text
    cut = max(length - 1, 0)
    # Do not split a character from its combining marks or an emoji sequence from its joiners.
    while cut > 0 and (unicodedata.category(text[cut]).startswith("M") or "\u200d" in text[cut - 1 : cut + 1]):
        cut -= 1
    head = text[:cut]
    space = head.rfind(" ")
    if space > cut * 2 // 3:  # end on a whole word when one ends near the cut
        head = head[:space]
    return head.rstrip() + "…"


def _plain_text(body: str) -> str:
    parts = []
    for block in _markdown.parse(body):
        if block.type == "fence":
            parts.append(block.content)
        for token in block.children or ():
            if token.type in {"text", "code_inline"}:
                parts.append(token.content)
            elif token.type in {"softbreak", "hardbreak"}:
                parts.append(" ")
        parts.append(" ")
    return "".join(parts)
