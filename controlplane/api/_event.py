"""The Event kind (extension): something that happened to a Node or Project, shaped as kubectl shows events."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, StrictInt, StrictStr

from ._meta import API_VERSION, ObjectMeta, Timestamp, WireModel


class EventType(StrEnum):
    """EventType is Normal for what is expected, Warning for what an operator may need to act on."""

    NORMAL = "Normal"
    WARNING = "Warning"


class ObjectReference(WireModel):
    """ObjectReference names the object an Event is about."""

    # Kind: "Node" or "Project" (or "ControlPlane" for the control plane itself).
    kind: StrictStr
    # Name: the object's name.
    name: StrictStr


class EventSource(WireModel):
    """EventSource is what recorded the Event."""

    # Component: "cara-server" for everything the control plane records.
    component: StrictStr | None = None


class Event(WireModel):
    """Event is one thing that happened: a state or reason transition, a path change, a drain, a decision."""

    api_version: Literal["caravanserai/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Event"] = "Event"
    # Metadata: name is "<object name>.<16 hex digits>", unique; createdAt is when it was recorded.
    metadata: ObjectMeta
    # InvolvedObject: what the Event is about.
    involved_object: ObjectReference = Field(alias="involvedObject")
    # Type: Normal or Warning.
    type: EventType
    # Reason: a CamelCase code (NodeNotReady, PathChanged, Drained, Scheduled, …).
    reason: StrictStr
    # Message: a sentence for people.
    message: StrictStr
    # Source: who recorded it.
    source: EventSource = Field(default_factory=EventSource)
    # Actor (extension): the tailnet identity (login name, tag or Node name) whose request caused it; unset when
    # the control plane acted on its own (a controller's decision, a timeout).
    actor: StrictStr | None = None
    # FirstTimestamp, LastTimestamp: when it happened (equal: events are not aggregated); Count is always 1.
    first_timestamp: Timestamp = Field(default=None, alias="firstTimestamp")
    last_timestamp: Timestamp = Field(default=None, alias="lastTimestamp")
    count: StrictInt = Field(default=1, ge=1)


class EventList(WireModel):
    """EventList is the answer of GET /api/v1/events: oldest first; items is never null."""

    api_version: Literal["caravanserai/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["EventList"] = "EventList"
    items: list[Event] = Field(default_factory=list)


class Transition(WireModel):
    """Transition (extension) is a subject entering a good or bad state: a Node becoming Ready or not, a path
    becoming Direct or not. Availability is computed from these, kept apart from (and longer than) Events."""

    # Subject: "node/<name>" (good = Ready) or "path/<node>/<peer>" (good = Direct).
    subject: StrictStr
    # Time: when the control plane saw the transition (its own clock).
    time: Timestamp
    # Good: the state entered is the good one.
    good: bool


class AvailabilityWindow(WireModel):
    """AvailabilityWindow is the share of one window a subject spent in its good state."""

    # Window: "24h" or "7d".
    window: StrictStr
    # Ratio: good time / observed time, 0..1; unset when nothing was observed in the window.
    ratio: float | None = Field(default=None, ge=0, le=1)
    # ObservedSeconds: the part of the window with a known state (from the first stored transition on).
    observed_seconds: float = Field(default=0.0, alias="observedSeconds", ge=0)


class PathAvailability(WireModel):
    """PathAvailability is how Direct one path of a Node was."""

    peer: StrictStr
    windows: list[AvailabilityWindow] = Field(default_factory=list)


class NodeAvailability(WireModel):
    """NodeAvailability is the answer of GET /api/v1/nodes/{name}/availability: Ready share and Direct shares."""

    api_version: Literal["caravanserai/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["NodeAvailability"] = "NodeAvailability"
    name: StrictStr
    # Ready: the share of each window the Node's Ready condition was True.
    ready: list[AvailabilityWindow] = Field(default_factory=list)
    # Paths: per peer, the share of each window its path was Direct.
    paths: list[PathAvailability] = Field(default_factory=list)
