"""Transcripts in the docs: shell sessions that a test re-runs on the committed sample.

A transcript is a fenced ``text`` block right after an HTML comment that starts with
``<!-- transcript``. In the block, a line ``$ COMMAND`` is a command and the lines up to the
next ``$`` line are what it prints (stdout and stderr as a terminal shows them), then
``[exit N]`` when N is not 0. The comment may give the files the commands read, one per line:

    <!-- transcript
    file /tmp/web-new.txt = 0123456789abcdef0123\\n89abcdef0123456789ab
    -->

Each transcript starts from a fresh copy of the committed repository's data
(``credentials/``, ``keys/``, ``policies/``, ``.sops.yaml``) in a new git repository at
``/tmp/demo`` with one commit on ``main``, decrypted with the committed TEST-ONLY key, commits
by "Alice Sec" dated 2026-11-27, and no ``gh`` on PATH. ``/tmp`` stands for a private temporary
directory. Commit ids differ on every run (sops re-encrypts with fresh randomness), so they are
compared as ``<commit>``.

``keyops`` commands run in-process, after any leading ``NAME=value`` environment assignments;
anything else (``git``, ``cat``, ``stat``) runs in bash.
Run the docs test with ``KEYOPS_UPDATE_TRANSCRIPTS=1`` to rewrite the blocks from a real run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from support.cli import run_in_process
from support.repo import PROJECT, clean_env

MARKER = "<!-- transcript"
DOC_TMP = "/tmp"
COMMIT = re.compile(r"\b(?:[0-9a-f]{40}|[0-9a-f]{12})\b")
#: The tools transcripts may call besides keyops (keyops itself needs git).
TOOLS = ("git", "cat", "stat", "bash", "sh", "env")


@dataclass
class Step:
    command: str
    expected: list[str]


@dataclass
class Transcript:
    doc: Path
    #: Its place among the doc's transcripts (0 = the first).
    ordinal: int
    #: Line numbers (0-based) of the fenced block's first content line and closing fence.
    start: int
    end: int
    files: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(PROJECT).as_posix()}#{self.ordinal + 1}"


def find(doc: Path) -> list[Transcript]:
    lines = doc.read_text().splitlines()
    found: list[Transcript] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith(MARKER):
            index += 1
            continue
        files: dict[str, str] = {}
        index += 1
        while not lines[index - 1].rstrip().endswith("-->"):
            line = lines[index].strip()
            if line.startswith("file "):
                path, _, content = line[5:].partition(" = ")
                files[path.strip()] = content.replace("\\n", "\n") + "\n"
            index += 1
        if not lines[index].startswith("```"):
            raise AssertionError(f"{doc}:{index + 1}: a transcript marker must precede ```text")
        start = index + 1
        end = start
        while not lines[end].startswith("```"):
            end += 1
        found.append(Transcript(doc, len(found), start, end, files, parse(lines[start:end])))
        index = end + 1
    return found


def parse(block: list[str]) -> list[Step]:
    steps: list[Step] = []
    for line in block:
        if line.startswith("$ "):
            steps.append(Step(line[2:], []))
        elif steps:
            steps[-1].expected.append(line)
        elif line.strip():
            raise AssertionError(f"output before the first command: {line!r}")
    for step in steps:
        while step.expected and not step.expected[-1].strip():
            step.expected.pop()
    return steps


def normalize(lines: list[str]) -> list[str]:
    return [COMMIT.sub("<commit>", line) for line in lines]


class Session:
    """One transcript's scratch repository and environment."""

    def __init__(self, tmp: Path, files: dict[str, str]) -> None:
        self.tmp = tmp
        self.repo = tmp / "demo"
        for name in ("credentials", "policies", "keys"):
            shutil.copytree(PROJECT / name, self.repo / name)
        shutil.copy(PROJECT / ".sops.yaml", self.repo / ".sops.yaml")
        home = tmp / "home"
        home.mkdir()
        tools = tmp / "bin"
        tools.mkdir()
        for tool in TOOLS:
            found = shutil.which(tool)
            if found:
                (tools / tool).symlink_to(found)
        self.env = clean_env(home)
        self.env.update(
            PATH=str(tools),
            SOPS_AGE_KEY_FILE=str(PROJECT / "keys" / "dev-TEST-ONLY.agekey"),
            GIT_AUTHOR_NAME="Alice Sec",
            GIT_COMMITTER_NAME="Alice Sec",
            GIT_AUTHOR_EMAIL="alice@example.invalid",
            GIT_COMMITTER_EMAIL="alice@example.invalid",
            GIT_AUTHOR_DATE="2026-11-27T12:00:00Z",
            GIT_COMMITTER_DATE="2026-11-27T12:00:00Z",
        )
        for path, content in files.items():
            target = Path(self.local(path))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            target.chmod(0o600)
        self.shell("git init --quiet --initial-branch=main && git add -A && "
                   "git commit --quiet -m 'the committed dev sample'")  # fmt: skip

    def local(self, text: str) -> str:
        """The doc's ``/tmp`` paths, pointed at this session's directory."""
        return re.sub(r"(?<![\w.])/tmp(?=/|\b)", str(self.tmp), text)

    def shown(self, text: str) -> str:
        return text.replace(str(self.tmp), DOC_TMP)

    def shell(self, command: str) -> tuple[int, str]:
        proc = subprocess.run(
            ["bash", "-c", self.local(command)],
            cwd=self.repo,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        return proc.returncode, proc.stdout

    def run(self, command: str) -> list[str]:
        """Run one transcript command; the lines it shows, ``[exit N]`` included."""
        words = shlex.split(self.local(command))
        assigned = {}
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            assigned[name] = value
        if words[0] == "keyops" and "&&" not in words and "|" not in words:
            stdin = None
            if "<" in words:
                at = words.index("<")
                stdin = Path(words[at + 1]).read_text()
                words = words[:at] + words[at + 2 :]
            env = {**self.env, **assigned}
            proc = run_in_process(words[1:], env=env, cwd=self.repo, input=stdin, merge=True)
            code, out = proc.returncode, proc.stdout
        else:
            code, out = self.shell(command)
        lines = self.shown(out).splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if code != 0:
            lines.append(f"[exit {code}]")
        return lines


def replay(transcript: Transcript, tmp: Path) -> list[tuple[Step, list[str]]]:
    session = Session(tmp, transcript.files)
    return [(step, session.run(step.command)) for step in transcript.steps]


def rewrite(transcript: Transcript, results: list[tuple[Step, list[str]]]) -> None:
    """Replace the block's content with what the commands printed (KEYOPS_UPDATE_TRANSCRIPTS).

    Found again by its place in the doc, since an earlier rewrite may have moved its lines.
    """
    transcript = find(transcript.doc)[transcript.ordinal]
    lines = transcript.doc.read_text().splitlines()
    block: list[str] = []
    for step, actual in results:
        if block:
            block.append("")
        block += [f"$ {step.command}", *actual]
    lines[transcript.start : transcript.end] = block
    transcript.doc.write_text("\n".join(lines) + "\n")


def updating() -> bool:
    return os.environ.get("KEYOPS_UPDATE_TRANSCRIPTS") == "1"
