from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QaConfig(AppConfig):
    name = "lms.qa"
    verbose_name = _("Q&A and polls")

    def ready(self) -> None:
        from lms.qa.actions import render_stored_questions
        from lms.realtime import register_source

        # Stored question lists are rendered again when a question is withdrawn or dismissed.
        register_source("qa_questions", render_stored_questions)
