"""What each stored event shows, so that a change to an object can rewrite its stored copies.

django-eventstream's `Event` rows keep the rendered fragments a page replays. A row here says
that the event `(channel, eid)` shows the object `key` ("chat_message-12"), and that it was
rendered from `source` (the object its renderer re-renders it from: a reply's event is
rendered from the reply but also shows the message it quotes). See `lms.realtime.copies`.
"""

from django.db import models


class StoredCopy(models.Model):
    channel = models.CharField(max_length=255)
    eid = models.BigIntegerField()
    key = models.CharField(max_length=100)
    source = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["key"], name="realtime_copy_key")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.eid} shows {self.key}"
