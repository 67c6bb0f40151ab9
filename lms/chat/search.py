"""Search within a room: words, and `from:username`.

PostgreSQL uses its full-text search (language-neutral "simple" configuration, so names and
words in any language match as typed); SQLite falls back to every word as a substring.
"""

from django.db import connection
from django.db.models import Q

from lms.chat.models import Message, Room

RESULTS = 50


def parse_query(query: str) -> tuple[list[str], list[str]]:
    """The words and the `from:` usernames in a query."""
    words, authors = [], []
    for token in query.split():
        if token.lower().startswith("from:") and len(token) > 5:
            authors.append(token[5:].lstrip("@"))
        else:
            words.append(token)
    return words, authors


def search_messages(room: Room, query: str) -> list[Message]:
    words, authors = parse_query(query)
    if not words and not authors:
        return []
    messages = room.messages.filter(deleted__isnull=True).with_related()
    if authors:
        match = Q()
        for username in authors:
            match |= Q(author__username__iexact=username)
        messages = messages.filter(match)
    if words:
        if connection.vendor == "postgresql":
            from django.contrib.postgres.search import SearchQuery, SearchVector

            messages = messages.annotate(search=SearchVector("body", config="simple")).filter(
                search=SearchQuery(" ".join(words), config="simple", search_type="plain")
            )
        else:
            for word in words:
                messages = messages.filter(body__icontains=word)
    return list(messages.order_by("-pk")[:RESULTS])
