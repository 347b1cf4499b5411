"""BM25 over chunk texts with bm25s: building, saving, loading and scoring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: bm25s's extended English list (179 words, NLTK's): the 33-word Lucene list ("en")
#: keeps words such as "we", "you", "this" that occur in most chunks of spoken lectures,
#: which add nothing to ranking and make every query walk posting lists of most chunks
STOPWORDS = "en_plus"


def stemmer_name() -> str | None:
    """``"english"`` when PyStemmer is installed (then BM25 stems), else None."""
    try:
        import Stemmer  # noqa: F401
    except ImportError:
        return None
    return "english"


def _stemmer(name: str | None) -> Any:
    if name is None:
        return None
    try:
        import Stemmer
    except ImportError:
        # built with a stemmer, read without one: unstemmed query words still match
        # the terms that stemming left unchanged, which beats failing the search
        return None
    return Stemmer.Stemmer(name)


def build(texts: Sequence[str], directory: Path, stemmer: str | None) -> None:
    """Index ``texts`` (document i is row i) and save the bm25s index in ``directory``."""
    import bm25s

    tokens = bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=_stemmer(stemmer), show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    retriever.save(str(directory), show_progress=False)


class Lexical:
    """A loaded BM25 index; scoring is done here on bm25s's precomputed score matrix."""

    def __init__(self, directory: Path, n_docs: int, stemmer: str | None, stopwords: str = STOPWORDS) -> None:
        import bm25s

        retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
        self._vocab: dict[str, int] = retriever.vocab_dict
        # the CSC matrix holds each (term, document) BM25 score, computed at build time
        self._data = retriever.scores["data"]
        self._indices = retriever.scores["indices"]
        self._indptr = retriever.scores["indptr"]
        self._n = n_docs
        self._stemmer = _stemmer(stemmer)
        # queries are tokenized as the generation was built, whatever today's default
        self._stopwords = stopwords

    def _term_ids(self, query: str) -> list[int]:
        import bm25s

        [words] = bm25s.tokenize(
            [query],
            stopwords=self._stopwords,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        # a repeated query word counts once, as in bm25s's own retrieval
        return sorted({self._vocab[w] for w in words if w in self._vocab})

    def scores(self, query: str, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 scores of every row (or of ``rows``), returned as ``(rows, scores)``."""
        terms = self._term_ids(query)
        if not terms:
            empty = np.empty(0, dtype=np.int64)
            return empty, np.empty(0, dtype=np.float32)
        spans = [(int(self._indptr[t]), int(self._indptr[t + 1])) for t in terms]
        docs = np.concatenate([self._indices[a:b] for a, b in spans])
        weights = np.concatenate([self._data[a:b] for a, b in spans])
        # bincount sums the postings of all terms in one C pass (np.add.at, which bm25s
        # uses without numba, is an order of magnitude slower on long posting lists)
        total = np.bincount(docs, weights=weights, minlength=self._n)
        if rows is None:
            return np.arange(self._n, dtype=np.int64), total
        return rows, total[rows]
