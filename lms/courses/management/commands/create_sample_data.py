from importlib import import_module

from django.apps import apps
from django.core.management.base import BaseCommand

from lms.courses import sample_data


class Command(BaseCommand):
    help = "Create demo people, courses and content. Safe to run again: nothing is duplicated."

    def handle(self, *args, **options):
        sample = sample_data.Sample()
        sample_data.create(sample)
        # Each feature app may add its own content in lms/<app>/sample_data.py.
        for config in apps.get_app_configs():
            if config.name.startswith("lms.") and config.name != "lms.courses":
                try:
                    module = import_module(f"{config.name}.sample_data")
                except ModuleNotFoundError as error:
                    if error.name != f"{config.name}.sample_data":
                        raise
                    continue
                module.create(sample)
        for role, username, password in sample.logins:
            self.stdout.write(f"{role} {username} {password}")
