from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QaConfig(AppConfig):
    name = "lms.qa"
    verbose_name = _("Q&A and polls")

    def ready(self) -> None:
        from lms.qa.actions import PUSH_DELAY, push_poll_results, push_questions, render_stored_questions
        from lms.realtime import register_source
        from lms.realtime.coalesce import register_coalesced

        register_coalesced("questions", delay=PUSH_DELAY, run=push_questions)
        register_coalesced("poll", delay=PUSH_DELAY, run=push_poll_results)
        # Stored question lists are rendered again when a question is withdrawn or dismissed.
        register_source("qa_questions", render_stored_questions)
