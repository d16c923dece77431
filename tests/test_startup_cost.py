"""What every kit process pays before it grades: no grammar built for checks nobody asks for."""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys

import pytest

LOADED = "import sys; {imports}; print(sys.modules.get('rfc3987_syntax') is not None)"


def _loads_the_iri_grammar(imports: str) -> bool:
    completed = subprocess.run([sys.executable, "-c", LOADED.format(imports=imports)],
                               capture_output=True, text=True, check=True)
    return completed.stdout.strip() == "True"


@pytest.mark.skipif(
    importlib.machinery.PathFinder.find_spec("rfc3987_syntax") is None,
    reason="rfc3987_syntax is not installed: nothing to avoid")
def test_kit_processes_skip_the_iri_grammar_jsonschema_would_build():
    """jsonschema imports rfc3987_syntax when installed (about 2 s of CPU building its grammar);
    a process that imports the kit first never does."""
    assert _loads_the_iri_grammar("import jsonschema")  # the control: the cost is real here
    assert not _loads_the_iri_grammar("import adaline_kit, nbformat, jsonschema")
    assert not _loads_the_iri_grammar("from adaline_kit.grade import gradescope_results")

