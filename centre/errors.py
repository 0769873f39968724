"""The refusal every part raises for a bad value: it names the field and says what is allowed."""

from __future__ import annotations


class FieldError(ValueError):
    """A refused value; ``field`` names it and ``reason`` says what is allowed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message
