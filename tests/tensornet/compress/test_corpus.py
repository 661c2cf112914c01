"""The sentence corpus: prose only, deterministic, and a held-out split disjoint from healing."""

import pytest

from archsmith.errors import ArchsmithError
from archsmith.tensornet.compress.corpus import (
    corpus_sentences,
    extract_sentences,
    sentence_key,
    split_sentences,
)


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return corpus_sentences()


def test_corpus_is_large_and_prose(sentences):
    assert len(sentences) >= 2000
    for s in sentences:
        assert 6 <= len(s.split()) <= 48
        assert s[0].isupper() and s[-1] in ".!?"
        assert "::=" not in s and ">>>" not in s and "``" not in s


def test_corpus_is_deterministic_and_distinct(sentences):
    assert corpus_sentences() == sentences
    assert len({sentence_key(s) for s in sentences}) == len(sentences)


def test_split_is_disjoint_deterministic_and_complete(sentences):
    split = split_sentences(num_eval=512, seed=0)
    assert len(split.eval) == 512
    eval_keys = {sentence_key(s) for s in split.eval}
    heal_keys = {sentence_key(s) for s in split.heal}
    assert not eval_keys & heal_keys
    assert eval_keys | heal_keys == {sentence_key(s) for s in sentences}
    assert split_sentences(num_eval=512, seed=0) == split
    assert split_sentences(num_eval=512, seed=1).eval != split.eval


def test_split_drops_near_duplicates_across_the_sets():
    # the same sentence with other case and spacing must not land on both sides
    pool = [f"Sentence number {i} is here." for i in range(40)]
    pool += [s.upper().replace(" ", "  ") for s in pool]
    split = split_sentences(pool, num_eval=10, seed=3)
    assert len(split.eval) + len(split.heal) == 40
    assert not {sentence_key(s) for s in split.eval} & {sentence_key(s) for s in split.heal}


def test_split_refuses_a_too_small_pool():
    with pytest.raises(ArchsmithError, match="cannot give 10 evaluation"):
        split_sentences(["One two three four five six."] * 5, num_eval=10)


def test_extract_sentences_strips_markup_and_skips_code():
    text = (
        "The :func:`sklearn.datasets.load_digits` loader returns ``images`` of eight by "
        "eight pixels. See e.g. the user guide for more details about it.\n\n"
        "   >>> load_digits()\n   code here\n\n"
        "grammar ::= rule\n\n"
        "A short one.\n"
    )
    got = extract_sentences(text)
    assert got == [
        "The sklearn.datasets.load_digits loader returns images of eight by eight pixels.",
        "See e.g. the user guide for more details about it.",
    ]
