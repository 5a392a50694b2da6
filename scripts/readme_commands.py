"""Collect, section by section, every command, code line and table row of a README.

When the 875-line README became a site and a short README (issue 25), its text moved into
``docs/``. This script collected what must not get lost on the way from the README as it
was (commit ``37e99ee``) into ``tests/readme_moved.json``; ``tests/test_docs.py`` checks
that every entry appears in the site's pages. Run it again only to refresh the list from
another README::

    python scripts/readme_commands.py [--ref 37e99ee] [--out tests/readme_moved.json]

What counts, per ``## `` section (the text before the first one is ``intro``):

- each command of a ``bash`` block (``\\``-continued lines joined, trailing comments
  dropped; ``#SBATCH`` lines kept, other comment lines dropped);
- each line of a ``python`` block (trailing comments dropped);
- each inline code span that is a command (it starts with a program such as
  ``napari-res101unet``, ``python``, ``pip``, ``torchrun`` or ``dask``), an option
  (``--...``) or a call (``name(...)``);
- each row of a Markdown table (the figures of the benchmarks and the text of the
  conformance and reliability tables).

Whitespace is normalised (runs of blanks and line breaks count as one space).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REF = "37e99ee"
PROGRAMS = (
    "napari-res101unet", "napari ", "python ", "pip ", "xvfb-run", "torchrun", "dask ",
    "tox", "ruff ", "srun ", "mkdocs ",
)  # fmt: skip
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")
CALL = re.compile(r"^[A-Za-z_][\w.]*\(.*\)$")


def normalise(text: str) -> str:
    """One space for every run of whitespace; ``\\`` line continuations joined."""
    return " ".join(text.replace("\\\n", " ").split())


def _drop_comment(line: str) -> str:
    quoted = re.sub(r"(\"[^\"]*\"|'[^']*')", lambda m: "x" * len(m.group()), line)
    cut = quoted.find(" #")
    return (line[:cut] if cut >= 0 else line).rstrip()


def _bash(block: str) -> list[str]:
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        stripped = line.strip()
        if stripped.startswith("#SBATCH"):
            out.append(stripped)
        elif stripped and not stripped.startswith("#"):
            out.append(_drop_comment(stripped))
    return out


def _python(block: str) -> list[str]:
    lines = (_drop_comment(line).strip() for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _spans(prose: str) -> list[str]:
    found = []
    for match in SPAN.finditer(prose):
        span = normalise(match.group(1))
        if span.startswith(PROGRAMS) or span.startswith("--") or CALL.match(span):
            found.append(span)
    return found


def _rows(prose: str) -> list[str]:
    rows = (line.strip() for line in prose.splitlines())
    return [row for row in rows if row.startswith("|") and not re.fullmatch(r"[|:\- ]+", row)]


def collect(readme: str) -> dict[str, dict[str, list[str]]]:
    """``{section: {"commands": [...], "rows": [...]}}`` of a README's text."""
    sections: dict[str, dict[str, list[str]]] = {}
    parts = re.split(r"^## (.+)$", readme, flags=re.M)
    for title, body in [("intro", parts[0]), *zip(parts[1::2], parts[2::2])]:
        commands: list[str] = []
        for lang, block in FENCE.findall(body):
            commands += _bash(block) if lang == "bash" else []
            commands += _python(block) if lang == "python" else []
        prose = FENCE.sub("", body)
        commands += _spans(prose)
        unique = list(dict.fromkeys(normalise(c) for c in commands if c))
        sections[title.strip()] = {"commands": unique, "rows": _rows(prose)}
    return sections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default=REF, help=f"git revision of README.md ({REF})")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "readme_moved.json")
    args = parser.parse_args(argv)
    readme = subprocess.run(
        ["git", "show", f"{args.ref}:README.md"],
        cwd=REPO, check=True, capture_output=True, encoding="utf-8",
    ).stdout  # fmt: skip
    found = {"ref": args.ref, "sections": collect(readme)}
    args.out.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    counts = {k: (len(v["commands"]), len(v["rows"])) for k, v in found["sections"].items()}
    print(f"wrote {args.out}: (commands, table rows) per section {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
