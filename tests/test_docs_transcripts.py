"""Every transcript in the docs is what the committed sample prints today.

The transcripts (see tests/support/transcripts.py for their format) are re-run command by
command on a fresh copy of the committed dev stack and compared line by line. After a change
of output, regenerate them with ``KEYOPS_UPDATE_TRANSCRIPTS=1`` (without ``-n``) and review the
diff of the docs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import transcripts
from support.repo import PROJECT

DOCS = [*sorted((PROJECT / "docs").glob("*.md")), PROJECT / "README.md"]
ALL = [t for doc in DOCS for t in transcripts.find(doc)]


def test_the_runbooks_are_transcripts() -> None:
    names = {t.name for t in ALL}
    assert {"docs/rotation.md#1", "docs/rotation.md#2", "docs/rotation.md#3"} <= names


@pytest.mark.parametrize("transcript", ALL, ids=[t.name for t in ALL])
def test_transcript_matches_a_fresh_run(transcript: transcripts.Transcript, tmp_path: Path) -> None:
    results = transcripts.replay(transcript, tmp_path)
    if transcripts.updating():
        transcripts.rewrite(transcript, results)
        return
    for step, actual in results:
        assert transcripts.normalize(actual) == transcripts.normalize(step.expected), (
            f"{transcript.name}: $ {step.command}"
        )
