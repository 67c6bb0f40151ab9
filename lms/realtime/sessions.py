"""Sessions that end end their event streams, on every process.

Logging out, or a password change (which signs out the user's other sessions), sends the
user's streams the same recheck as a change of membership: each stream whose session no
longer signs its user in ends, and the page, refused on reconnecting, goes to sign-in.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save, pre_save


def connect() -> None:
    user_model = get_user_model()
    user_logged_out.connect(_logged_out, dispatch_uid="lms.realtime.logged_out")
    pre_save.connect(_note_password_change, sender=user_model, dispatch_uid="lms.realtime.password")
    post_save.connect(_password_changed, sender=user_model, dispatch_uid="lms.realtime.password")


def _logged_out(sender, request, user, **kwargs) -> None:
    from lms.realtime import recheck_user_streams_on_commit

    if user is not None and user.pk is not None:
        # Within a request the recheck goes out once the response is sent, when the
        # session is already gone.
        recheck_user_streams_on_commit(user.pk)


def _note_password_change(sender, instance, update_fields=None, **kwargs) -> None:
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    saved = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._lms_password_changed = saved is not None and saved != instance.password


def _password_changed(sender, instance, created, **kwargs) -> None:
    from lms.realtime import recheck_user_streams_on_commit

    if not created and getattr(instance, "_lms_password_changed", False):
        instance._lms_password_changed = False
        recheck_user_streams_on_commit(instance.pk)
