from django.contrib import admin

from lms.qa.models import Poll, PollOption, PollVote, Question, Vote


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ("text", "stream", "author", "anonymous", "state", "votes_count", "pinned", "created")
    list_filter = ("state", "anonymous", "stream__course")
    search_fields = ("text", "author__username")
    raw_id_fields = ("stream", "author", "merged_into")


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("question", "user", "created")
    raw_id_fields = ("question", "user")


class PollOptionInline(admin.TabularInline):
    model = PollOption
    extra = 0


@admin.register(Poll)
class PollAdmin(admin.ModelAdmin):
    list_display = ("question", "stream", "state", "created")
    list_filter = ("state",)
    inlines = [PollOptionInline]
    raw_id_fields = ("stream", "created_by")


@admin.register(PollOption)
class PollOptionAdmin(admin.ModelAdmin):
    list_display = ("text", "poll", "position")
    raw_id_fields = ("poll",)


@admin.register(PollVote)
class PollVoteAdmin(admin.ModelAdmin):
    list_display = ("poll", "option", "user", "created")
    raw_id_fields = ("poll", "option", "user")
