from django.apps import AppConfig


class LtiConfig(AppConfig):
    name = "lms.lti"
    label = "lms_lti"
    verbose_name = "LTI 1.3"
