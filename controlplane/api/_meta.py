"""Object metadata, names and RFC 3339 timestamps shared by every caravanserai/v1 kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)

from controlplane.naming import NAME_MAX_LENGTH, NAME_PATTERN, validate_name

API_VERSION: Final = "caravanserai/v1"

#: The largest request body the API accepts; clients refuse larger objects before sending them.
MAX_BODY_BYTES: Final = 1024 * 1024

#: Go's zero time.Time; on the wire it means "never" / unset.
ZERO_TIME = "0001-01-01T00:00:00Z"


def format_time(value: datetime) -> str:
    """format_time renders an aware datetime as RFC 3339 in UTC with a `Z` suffix."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _refuse_numbers(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be an RFC 3339 timestamp string (e.g. 2026-01-02T03:04:05Z)")
    return value


def _unset_zero_and_utc(value: datetime | None) -> datetime | None:
    if value is None or value.year == 1:  # Go's zero time means unset
        return None
    return value if value.utcoffset() == _NO_OFFSET else value.astimezone(UTC)


_NO_OFFSET = timedelta(0)
_FROM_ISO: Final = datetime.fromisoformat


def _timestamp(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime | None:
    """_timestamp reads one timestamp. The form this API writes itself (UTC with `Z`, whole seconds or six
    fraction digits: every stored document's) is parsed at once; anything else goes to pydantic-core's parser
    with numbers refused, then is normalised. One call per timestamp instead of two: a stored Node carries a
    dozen, decoded on every full beat."""
    if type(value) is str and (len(value) == 20 or len(value) == 27) and value[-1] == "Z" and value[10] == "T":
        try:
            parsed = _FROM_ISO(value)
        except ValueError:
            pass  # pydantic-core's parser says what is wrong with it
        else:
            return None if parsed.year == 1 else parsed
    return _unset_zero_and_utc(handler(_refuse_numbers(value)))


#: An optional RFC 3339 timestamp: aware, normalised to UTC (so it serialises with `Z`); `null` and Go's zero time
#: read as unset. Serialising stays in pydantic-core: a Node carries a dozen of these.
Timestamp = Annotated[AwareDatetime | None, WrapValidator(_timestamp)]


class WireModel(BaseModel):
    """WireModel is the base of every caravanserai/v1 model: camelCase aliases, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)

    def to_wire(self) -> dict[str, Any]:
        """to_wire returns the JSON-ready dict of this object as the Go project writes it."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_wire_json(self) -> str:
        """to_wire_json is to_wire as JSON text, serialized in one pass by pydantic-core (no dict in between)."""
        return self.model_dump_json(by_alias=True, exclude_none=True)


StringMap = dict[StrictStr, StrictStr]


class ObjectMeta(WireModel):
    """ObjectMeta is the metadata every object carries; the server owns createdAt and updatedAt."""

    # Name: unique per kind; see NAME_RULE (published in the JSON Schema, checked by _check_name).
    name: StrictStr = Field(
        json_schema_extra={"pattern": NAME_PATTERN.pattern, "minLength": 1, "maxLength": NAME_MAX_LENGTH}
    )
    # Labels: string→string, used by `-l key=value` selectors; unset means none.
    labels: StringMap | None = None
    # Annotations: string→string notes for people and tools; unset means none.
    annotations: StringMap | None = None
    # CreatedAt: set by the server when the object is first stored; unset in requests.
    created_at: Timestamp = Field(default=None, alias="createdAt")
    # UpdatedAt: set by the server on every spec or status change.
    updated_at: Timestamp = Field(default=None, alias="updatedAt")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return validate_name(value)
