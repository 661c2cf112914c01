"""Plain English sentences for calibration, healing and evaluation, taken from installed text.

No corpus is downloaded and none is bundled: the sentences are extracted, deterministically, from
prose that ships with the interpreter and with scikit-learn:

- ``pydoc_data.topics`` — the Python language reference as plain text (CPython's ``help()``
  pages; part of the standard library);
- ``sklearn/datasets/descr/*.rst`` — scikit-learn's data-set descriptions;
- the docstrings of a fixed list of standard-library modules (:data:`DOCSTRING_MODULES`) and of
  their public functions, classes and methods.

Prose paragraphs are kept (indented code, grammar rules, tables and doctests are dropped), the
reStructuredText markup is stripped, paragraphs are cut into sentences, and sentences with 6 to
48 words that are mostly letters are kept, once each (compared case-insensitively, with
whitespace folded). :func:`split_sentences` then makes a fixed, seeded split into *evaluation*
sentences (held out: used only to compare the compressed model with the original) and *healing*
sentences (calibration and distillation), disjoint by construction.
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsmith.errors import ArchsmithError

__all__ = [
    "DOCSTRING_MODULES",
    "SentenceSplit",
    "corpus_sentences",
    "extract_sentences",
    "sentence_key",
    "split_sentences",
]

#: Standard-library modules whose docstrings are read (a missing one is skipped).
DOCSTRING_MODULES = (
    "argparse",
    "asyncio",
    "collections",
    "concurrent.futures",
    "csv",
    "datetime",
    "decimal",
    "email.message",
    "functools",
    "heapq",
    "http.client",
    "inspect",
    "itertools",
    "json",
    "logging",
    "os",
    "pathlib",
    "random",
    "re",
    "shutil",
    "socket",
    "sqlite3",
    "statistics",
    "subprocess",
    "tarfile",
    "threading",
    "unittest",
    "urllib.request",
    "zipfile",
)
_MIN_WORDS, _MAX_WORDS = 6, 48
#: Paragraph lines containing these are code, grammar, tables or directives, not prose.
_NOT_PROSE = ("::=", ">>>", "===", "---", "***", "+--", ".. ", "|", "http", "www.", "\t")
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")  # :func:`x` -> x
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`_{1,2}")  # `text <url>`__ -> text
_MARKUP = re.compile(r"\*\*|``|`|\*")
_CITE = re.compile(r"\[\d+\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"“])")
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|cf|vs|Dr|Mr|Mrs|al|Fig|No|approx)\.$")


def sentence_key(sentence: str) -> str:
    """The identity of a sentence for de-duplication: case-folded, whitespace collapsed."""
    return " ".join(sentence.split()).casefold()


def _clean(paragraph: str) -> str:
    text = _ROLE.sub(r"\1", paragraph)
    text = _LINK.sub(r"\1", text)
    text = _CITE.sub("", text)
    text = _MARKUP.sub("", text)
    return " ".join(text.split())


def _paragraphs(text: str) -> Iterable[str]:
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        # indented blocks are code samples, grammar or nested lists in both sources
        if not lines or any(line.startswith("   ") for line in lines):
            continue
        if any(marker in line for line in lines for marker in _NOT_PROSE):
            continue
        yield _clean(block)


def _is_sentence(s: str) -> bool:
    words = s.split()
    if not (_MIN_WORDS <= len(words) <= _MAX_WORDS) or s[-1] not in ".!?":
        return False
    if not s[0].isupper():
        return False
    letters = sum(c.isalpha() or c == " " for c in s)
    return letters >= 0.85 * len(s)


def extract_sentences(text: str) -> list[str]:
    """The prose sentences of ``text`` (plain text or reStructuredText), in order of appearance."""
    out: list[str] = []
    for paragraph in _paragraphs(text):
        pieces = _SENTENCE_END.split(paragraph)
        merged: list[str] = []
        for piece in pieces:  # re-join splits made after an abbreviation ("e.g. Foo")
            if merged and _ABBREV.search(merged[-1]):
                merged[-1] = f"{merged[-1]} {piece}"
            else:
                merged.append(piece)
        out += [s.strip() for s in merged if _is_sentence(s.strip())]
    return out


def _docstrings(module_name: str) -> list[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    out = [inspect.getdoc(module) or ""]
    for name in sorted(dir(module)):
        obj = getattr(module, name, None)
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        out.append(inspect.getdoc(obj) or "")
        if inspect.isclass(obj):
            for attr in sorted(vars(obj)):
                if not attr.startswith("_"):
                    out.append(inspect.getdoc(getattr(obj, attr, None)) or "")
    return out


def _source_texts() -> list[tuple[str, str]]:
    texts: list[tuple[str, str]] = []
    topics: dict[str, str] = {}
    try:
        from pydoc_data import topics as pydoc_topics

        topics = dict(pydoc_topics.topics)
    except ImportError:  # some distributions strip pydoc_data; the other sources remain
        pass
    texts += [(f"pydoc_data.topics[{name!r}]", topics[name]) for name in sorted(topics)]
    import sklearn.datasets

    descr = Path(sklearn.datasets.__file__).parent / "descr"
    texts += [(str(p.name), p.read_text(encoding="utf-8")) for p in sorted(descr.glob("*.rst"))]
    with warnings.catch_warnings():  # deprecated attributes warn when their docstring is read
        warnings.simplefilter("ignore")
        for module_name in DOCSTRING_MODULES:
            texts += [(module_name, doc) for doc in _docstrings(module_name)]
    return texts


def corpus_sentences() -> list[str]:
    """Every distinct prose sentence of the installed sources, in a fixed order.

    The order (sources sorted by name, sentences in reading order, first occurrence kept) depends
    only on the installed texts, so the seeded split below is reproducible on one install.
    """
    seen: set[str] = set()
    out: list[str] = []
    for _, text in _source_texts():
        for s in extract_sentences(text):
            key = sentence_key(s)
            if key not in seen:
                seen.add(key)
                out.append(s)
    return out


@dataclass(frozen=True)
class SentenceSplit:
    """A disjoint split of sentences.

    Attributes:
        eval: held-out sentences, only for comparing the compressed model with the original.
        heal: sentences for calibration (rank selection) and healing (distillation).
    """

    eval: tuple[str, ...]
    heal: tuple[str, ...]


def split_sentences(
    sentences: Sequence[str] | None = None, *, num_eval: int = 512, seed: int = 0
) -> SentenceSplit:
    """A fixed seeded split of ``sentences`` (default: :func:`corpus_sentences`).

    Sentences are de-duplicated by :func:`sentence_key` first, so no evaluation sentence appears
    among the healing sentences, not even with different case or spacing.

    Args:
        num_eval: number of held-out evaluation sentences; the rest are for healing.
        seed: seeds the permutation (NumPy's PCG64, stable across platforms and versions).
    """
    pool = corpus_sentences() if sentences is None else list(sentences)
    seen: set[str] = set()
    unique: list[str] = []
    for s in pool:
        if sentence_key(s) not in seen:
            seen.add(sentence_key(s))
            unique.append(s)
    if num_eval < 2 or len(unique) < num_eval + 2:
        raise ArchsmithError(
            f"corpus: {len(unique)} distinct sentences cannot give {num_eval} evaluation "
            "sentences and still leave some for healing"
        )
    order = np.random.Generator(np.random.PCG64(seed)).permutation(len(unique))
    chosen = [unique[i] for i in order]
    return SentenceSplit(eval=tuple(chosen[:num_eval]), heal=tuple(chosen[num_eval:]))
