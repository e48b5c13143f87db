"""Field types of the OpenAPI models beyond Flask-RESTX's own: the nullable ones (Swagger 2.0 says `x-nullable`)."""

from __future__ import annotations

from typing import Any

from flask_restx import fields


class Nullable:
    """Mixin: mark a field `x-nullable` (Swagger 2.0's way to say the value may be null)."""

    def schema(self) -> dict[str, Any]:
        schema = super().schema()  # type: ignore[misc]
        schema["x-nullable"] = True
        return schema


class NullableString(Nullable, fields.String):
    pass


class NullableInteger(Nullable, fields.Integer):
    pass


class NullableFloat(Nullable, fields.Float):
    pass


class NullableRaw(Nullable, fields.Raw):
    pass


class NullableDateTime(Nullable, fields.DateTime):
    pass


class NullableNested(Nullable, fields.Nested):
    pass


class NullableDateTimeText(NullableString):
    """An input date and time: a string of format date-time with the pattern that narrows it (the schema's pattern
    and format together say what the validation reads)."""

    def schema(self) -> dict[str, Any]:
        schema = super().schema()
        schema["format"] = "date-time"
        return schema
