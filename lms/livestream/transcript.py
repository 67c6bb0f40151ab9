"""A stream's chat and Q&A as one timeline, for the recording page and the exports."""

import csv
import io
from dataclasses import dataclass
from datetime import timedelta

from django.utils.translation import gettext as _

from lms.livestream.models import Stream


@dataclass
class Item:
    at: float  # seconds from the stream's start
    kind: str  # "message" or "question"
    author: str
    text: str
    answered: bool = False
    votes: int = 0
    pk: int = 0

    @property
    def clock(self) -> str:
        return clock(self.at)


def clock(seconds: float) -> str:
    """mm:ss, or h:mm:ss past an hour."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def timeline(stream: Stream, *, names: bool = False) -> list[Item]:
    """Chat messages and questions in time order. Anonymous questions stay anonymous unless
    `names` (instructors' exports, when they ask for them)."""
    from lms.qa.models import Question

    start = stream.started_at
    if start is None:
        return []
    items = []
    if stream.chat_room_id:
        for message in stream.chat_room.messages.filter(deleted__isnull=True).select_related("author"):
            items.append(Item((message.created - start) / timedelta(seconds=1), "message", message.author.name, message.body, pk=message.pk))
    questions = Question.objects.filter(
        stream=stream, state__in=[Question.State.OPEN, Question.State.ANSWERED], merged_into__isnull=True
    ).select_related("author")
    for question in questions:
        author = question.author.name if names or not question.anonymous else _("Anonymous")
        items.append(Item(
            (question.created - start) / timedelta(seconds=1), "question", author, question.text,
            answered=question.state == Question.State.ANSWERED, votes=question.votes_count, pk=question.pk,
        ))
    items.sort(key=lambda item: (item.at, item.kind, item.pk))
    return items


def chapters(stream: Stream) -> list[Item]:
    """Answered questions, at the moment they were answered: the recording's chapters."""
    from lms.qa.models import Question

    if stream.started_at is None:
        return []
    answered = Question.objects.filter(stream=stream, state=Question.State.ANSWERED, answered_at__isnull=False)
    return [
        Item((q.answered_at - stream.started_at) / timedelta(seconds=1), "question", "", q.text, True, q.votes_count, q.pk)
        for q in answered.order_by("answered_at")
    ]


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a leading ' makes the cell plain text."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def to_csv(stream: Stream, items: list[Item]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("time"), _("kind"), _("author"), _("text"), _("answered"), _("votes")])
    for item in items:
        writer.writerow([
            item.clock, item.kind, safe_cell(item.author), safe_cell(item.text),
            "yes" if item.answered else ("no" if item.kind == "question" else ""), item.votes if item.kind == "question" else "",
        ])
    return out.getvalue()


def _md_escape(text: str) -> str:
    """Plain text inside Markdown: escape what would become markup (HTML included)."""
    escaped = text.replace("\\", "\\\\")
    for char in "`*_{}[]()#+-.!|<>~":
        escaped = escaped.replace(char, "\\" + char)
    return escaped.replace("\r", "").replace("\n", "  \n    ")


def to_markdown(stream: Stream, items: list[Item]) -> str:
    lines = [f"# {_md_escape(stream.title)}", "", f"{_md_escape(stream.course.code)} · {stream.started_at:%Y-%m-%d %H:%M} UTC", ""]
    for item in items:
        if item.kind == "question":
            state = _("answered") if item.answered else _("open")
            lines.append(f"- **{item.clock}** ❓ {_md_escape(item.author)}: {_md_escape(item.text)} ({state}, {item.votes} ▲)")
        else:
            lines.append(f"- **{item.clock}** {_md_escape(item.author)}: {_md_escape(item.text)}")
    return "\n".join(lines) + "\n"


def viewers_chart(stream: Stream, *, width: int = 560, height: int = 160) -> dict | None:
    """Points of a small SVG line chart of viewers over time, with the peak marked."""
    samples = list(stream.viewer_samples.all())
    if not samples:
        return None
    pad = 24
    first, last = samples[0].minute, samples[-1].minute
    span = max((last - first).total_seconds(), 60.0)
    top = max(max(s.viewers for s in samples), 1)

    def x(sample) -> float:
        return round(pad + (width - 2 * pad) * (sample.minute - first).total_seconds() / span, 1)

    def y(sample) -> float:
        return round(height - pad - (height - 2 * pad) * sample.viewers / top, 1)

    peak = max(samples, key=lambda s: s.viewers)
    return {
        "width": width, "height": height, "pad": pad, "base": height - pad,
        "points": " ".join(f"{x(s)},{y(s)}" for s in samples),
        "peak": peak.viewers, "peak_x": x(peak), "peak_y": y(peak),
        "peak_clock": clock((peak.minute - (stream.started_at or first)).total_seconds()),
        "minutes": int(span // 60), "samples": samples,
    }
