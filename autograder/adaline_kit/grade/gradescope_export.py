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
reads any tag as plain data, and only the submitters are used.
"""

from __future__ import annotations

import dataclasses
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


def read_metadata(folder: Path) -> dict[str, tuple[Submitter, ...]]:
    """Submission folder name -> its submitters; ExportError if the file is unusable."""
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
        metadata[str(key)] = submitters
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
    return [ExportedSubmission(folder / name, metadata.get(name, ())) for name in sorted(names)]
