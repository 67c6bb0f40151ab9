"""Stream chat rooms were called "Livestream <id>": call them after their stream's title."""

from django.db import migrations


def name_rooms(apps, schema_editor):
    Stream = apps.get_model("livestream", "Stream")
    Room = apps.get_model("chat", "Room")
    for stream in Stream.objects.exclude(chat_room=None).only("pk", "title", "chat_room_id"):
        title = stream.title.strip()
        name = title if len(title) <= 80 else title[:79].rsplit(" ", 1)[0].rstrip(" ,;:-") + "…"
        Room.objects.filter(pk=stream.chat_room_id, name=f"Livestream {stream.pk}").update(name=name)


class Migration(migrations.Migration):
    dependencies = [("livestream", "0002_recording_viewersample"), ("chat", "0002_room_stream_kind")]

    operations = [migrations.RunPython(name_rooms, migrations.RunPython.noop)]
