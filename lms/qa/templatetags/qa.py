from django import template

register = template.Library()


@register.filter
def in_state(questions, state: str) -> list:
    """The questions in `state` ("open", "answered"…), in the order given."""
    return [question for question in questions if question.state == state]
