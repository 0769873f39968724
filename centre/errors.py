"""The refusal every part raises for a bad value: it names the field and says what is allowed."""

from __future__ import annotations


class FieldError(ValueError):
    """A refused value; ``field`` names it and ``reason`` says what is allowed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def error_json(status: int, error: BaseException | None) -> dict:
    """The JSON body of every corehour API refusal: ``{"status", "message"}``, and ``field``
    where the error names one.  Tornado's HTTPError keeps its text in ``log_message``."""
    from http import HTTPStatus

    message = getattr(error, "message", None) or getattr(error, "log_message", None)
    body: dict = {"status": status, "message": message or HTTPStatus(status).phrase}
    if getattr(error, "field", None):
        body["field"] = error.field
    return body
