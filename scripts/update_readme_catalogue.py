"""Rewrite the README's framework-name table from :mod:`initsim.framework_names`.

Run: python scripts/update_readme_catalogue.py [--check]

The table and its "differences between frameworks" list sit between the
``<!-- framework-names:start -->`` and ``<!-- framework-names:end -->``
markers; ``--check`` exits 1 (without writing) when they are not current,
which is what ``tests/test_readme.py`` asserts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from initsim.framework_names import markdown_tables

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- framework-names:start -->"
END = "<!-- framework-names:end -->"


def render(text: str) -> str:
    """Return ``text`` with the generated tables between the markers.

    Parameters
    ----------
    text : str
        The README.

    Returns
    -------
    str
        The README with the current tables.

    Raises
    ------
    ValueError
        If the markers are missing or out of order.
    """
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"README.md needs the markers {START} and {END}")
    return f"{head}{START}\n{markdown_tables()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` verify) the README's framework-name table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify only; exit 1 if stale")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print(
                "README.md's framework-name table is stale: run "
                "python scripts/update_readme_catalogue.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
