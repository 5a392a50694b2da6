"""Print (or write into docs/reader.md) the reader's conformance table.

Reads nibabel's and pydicom's bundled test files and files written with SimpleITK,
tifffile and pydicom, with our reader and with the peer library, and writes mask round
trips read back by nibabel/SimpleITK (cases: tests/io/conformance_cases.py).

Usage::

    python scripts/conformance_table.py            # print the markdown table
    python scripts/conformance_table.py --write    # replace the table in docs/reader.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- conformance:start -->", "<!-- conformance:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/reader.md")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests" / "io"))
    from conformance_written import all_rows, markdown

    with tempfile.TemporaryDirectory() as tmp:
        rows = all_rows(Path(tmp))
    table = markdown(rows)
    summary = f"{sum(r.match for r in rows)} of {len(rows)} cases match."
    if not args.write:
        print(table + "\n\n" + summary)
        return 0 if all(r.match for r in rows) else 1
    doc = REPO / "docs" / "reader.md"
    text = doc.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    doc.write_text(f"{head}{START}\n{table}\n\n{summary}\n{END}{tail}", encoding="utf-8")
    print(f"{doc}: {summary}")
    return 0 if all(r.match for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
