"""Read a Gradescope "Export Submissions" folder: who submitted what.

The export holds one folder per submission (``submission_12345/``, with the student's files) and
``submission_metadata.yml``, which maps each folder name to its record. Gradescope writes that
file from Ruby, so keys carry a leading colon::

    submission_12345:
      :submitters:
      - :name: Jane Doe
        :sid: '123456'
        :email: jane@example.edu
      :created_at: 2024-03-01 12:00:00.000000000 -08:00
      :score: 10.0
      :history: []

Values may also carry Ruby type tags (``!ruby/object:BigDecimal 18:0.1e2``); the loader here
reads any tag as plain data. Used: the submitters, ``:created_at:`` (the submission time) and,
where an export carries one, a due date (``:due_date:``, also inside ``:assignment:``).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from pathlib import Path

import yaml

METADATA_FILE = "submission_metadata.yml"


class ExportError(ValueError):
    """The export's metadata cannot be read; the message says why."""


@dataclasses.dataclass(frozen=True)
class Submitter:
    name: str = ""
    email: str = ""
    sid: str = ""

    def label(self) -> str:
        """``Name <email>``, or whichever of the two is known."""
        if self.name and self.email:
            return f"{self.name} <{self.email}>"
        return self.name or self.email or self.sid


@dataclasses.dataclass(frozen=True)
class ExportedSubmission:
    """One submission folder of the export and the people who submitted it."""

    folder: Path
    submitters: tuple[Submitter, ...]
    submitted_at: str = ""  # ISO 8601 with offset, "" if unknown
    due: str = ""  # the due date the export states, ISO 8601, "" if none

    @property
    def name(self) -> str:
        return self.folder.name

    def student(self) -> str:
        """Everyone on the submission, ``Name <email>``, separated by ``; ``."""
        return "; ".join(s.label() for s in self.submitters if s.label())


def is_export(folder: Path) -> bool:
    return (folder / METADATA_FILE).is_file()


class _TolerantLoader(yaml.SafeLoader):
    """A safe loader that reads any unknown (Ruby) tag as the plain scalar, list or mapping."""


def _untagged(loader: _TolerantLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TolerantLoader.add_multi_constructor("!", _untagged)
_TolerantLoader.add_multi_constructor("tag:", _untagged)


def _field(record: dict, name: str):
    """``record[":name"]``, or ``record["name"]`` (hand-written or converted files)."""
    for key in (f":{name}", name):
        if key in record:
            return record[key]
    return None


def _text(value) -> str:
    return "" if value is None else " ".join(str(value).split())


_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d)?)(?:\.(\d+))?\s*"
                        r"(Z|[+-]\d\d(?::?\d\d)?)?$")


def timestamp(value) -> str:
    """A metadata time (a datetime, or text such as ``2024-03-01 12:00:00.000000000 -08:00``) as
    ISO 8601 (``2024-03-01T12:00:00-08:00``, seconds precision); "" if it is not a time."""
    if isinstance(value, datetime.datetime):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    match = _TIMESTAMP.match(_text(value))
    if not match:
        return ""
    date, clock, _, zone = match.groups()
    clock = clock if clock.count(":") == 2 else clock + ":00"
    if zone and zone != "Z":
        zone = zone if ":" in zone or len(zone) == 3 else f"{zone[:3]}:{zone[3:]}"
        zone = zone if len(zone) > 3 else zone + ":00"
    return f"{date}T{clock}{'+00:00' if zone == 'Z' else zone or ''}"


def parse_time(text: str) -> datetime.datetime | None:
    """An ISO 8601 time from :func:`timestamp` or the command line; naive ones are taken as UTC."""
    text = timestamp(text) or text
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _due(record: dict) -> str:
    assignment = _field(record, "assignment")
    for source in (record, assignment if isinstance(assignment, dict) else {}):
        due = timestamp(_field(source, "due_date"))
        if due:
            return due
    return ""


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the metadata says about one submission folder."""

    submitters: tuple[Submitter, ...] = ()
    submitted_at: str = ""
    due: str = ""


def read_metadata(folder: Path) -> dict[str, Entry]:
    """Submission folder name -> its metadata entry; ExportError if the file is unusable."""
    path = folder / METADATA_FILE
    try:
        raw = yaml.load(path.read_text(encoding="utf-8", errors="replace"), Loader=_TolerantLoader)
    except (OSError, yaml.YAMLError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ExportError(f"{path}: not a readable Gradescope metadata file ({detail})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ExportError(f"{path}: expected a mapping of submission folders to records")
    metadata = {}
    for key, record in raw.items():
        people = _field(record, "submitters") if isinstance(record, dict) else None
        submitters = tuple(
            Submitter(_text(_field(p, "name")), _text(_field(p, "email")), _text(_field(p, "sid")))
            for p in (people if isinstance(people, list) else []) if isinstance(p, dict))
        if isinstance(record, dict):
            metadata[str(key)] = Entry(submitters, timestamp(_field(record, "created_at")),
                                       _due(record))
        else:
            metadata[str(key)] = Entry(submitters)
    return metadata


def read_export(folder: Path) -> list[ExportedSubmission]:
    """Every submission of the export, in folder-name order.

    Folders listed in the metadata come with their submitters (a listed folder that is missing
    still yields an entry, so its absence shows in the gradebook); submission folders that the
    metadata does not list are included with no submitters.
    """
    metadata = read_metadata(folder)
    names = set(metadata)
    names.update(p.name for p in folder.iterdir()
                 if p.is_dir() and not p.name.startswith((".", "__MACOSX")))
    entries = []
    for name in sorted(names):
        entry = metadata.get(name, Entry())
        entries.append(ExportedSubmission(folder / name, entry.submitters, entry.submitted_at,
                                          entry.due))
    return entries


def export_of(folder: Path) -> tuple[Path, ExportedSubmission] | None:
    """If ``folder`` is one submission folder of an export (its parent holds the metadata),
    the export folder and that submission's entry; else None."""
    folder = Path(folder)
    parent = folder.resolve().parent
    if not is_export(parent):
        return None
    for entry in read_export(parent):
        if entry.name == folder.resolve().name:
            return parent, entry
    return None
