"""BM25 over chunk texts: building (streamed, in batches), saving, loading and scoring.

Texts are tokenized with bm25s's tokenizer (so queries and documents split alike), and
the BM25 score of every (term, document) pair is computed here at build time and saved
as a CSC matrix in the file names bm25s itself uses (``data/indices/indptr.csc.index.npy``,
``vocab.index.json``), so generations written by older versions (built by bm25s) load the
same way. Building here rather than with ``bm25s.BM25.index`` lets texts arrive as a
stream (no list of every text in memory) and lets a small delta segment be scored with
the document frequencies of the large segment it sits beside.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: bm25s's extended English list (179 words, NLTK's): the 33-word Lucene list ("en")
#: keeps words such as "we", "you", "this" that occur in most chunks of spoken lectures,
#: which add nothing to ranking and make every query walk posting lists of most chunks
STOPWORDS = "en_plus"
#: BM25 parameters (bm25s's defaults, Lucene's IDF)
K1 = 1.5
B = 0.75
#: texts tokenized at a time: bounds the token lists held in memory while building
BATCH = 20_000

DATA, INDICES, INDPTR, VOCAB, PARAMS = (
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
    "vocab.index.json",
    "params.index.json",
)


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


@dataclass
class Corpus:
    """Statistics of another segment that a delta segment's IDF and length norm include."""

    vocab: dict[str, int]
    df: np.ndarray
    docs: int
    tokens: int

    @classmethod
    def of(cls, directory: Path, docs: int, tokens: int) -> Corpus:
        """The statistics of the BM25 index saved in ``directory`` (``docs`` rows, ``tokens`` words)."""
        vocab = json.loads((directory / VOCAB).read_text(encoding="utf-8"))
        indptr = np.load(directory / INDPTR, mmap_mode="r")
        # every posting of a term is a document holding it, so a column's length is its df
        return cls(vocab, np.diff(np.asarray(indptr, dtype=np.int64)), docs, tokens)


def _batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(texts)
    while batch := list(itertools.islice(it, size)):
        yield batch


def build(
    texts: Iterable[str], directory: Path, stemmer: str | None, corpus: Corpus | None = None
) -> dict[str, int]:
    """Index ``texts`` (document i is row i) into ``directory``; returns ``{"docs", "tokens"}``.

    ``texts`` is consumed once, ``BATCH`` at a time. With ``corpus``, IDF and the average
    document length count that corpus too (a delta segment scored like its base).
    """
    import bm25s

    directory.mkdir(parents=True, exist_ok=True)
    stem = _stemmer(stemmer)
    vocab: dict[str, int] = {}
    terms, docs, tfs, lengths = [], [], [], []
    n = 0
    for batch in _batches(texts, BATCH):
        words = bm25s.tokenize(
            batch, stopwords=STOPWORDS, stemmer=stem, return_ids=False, show_progress=False
        )
        flat = [vocab.setdefault(w, len(vocab)) for doc in words for w in doc]
        length = np.fromiter((len(doc) for doc in words), dtype=np.int64, count=len(words))
        doc_of = np.repeat(np.arange(n, n + len(words), dtype=np.int64), length)
        # one (term, document) key per token; unique counts give the term frequencies
        keys, tf = np.unique(np.asarray(flat, dtype=np.int64) << 32 | doc_of, return_counts=True)
        terms.append((keys >> 32).astype(np.int32))
        docs.append((keys & 0xFFFFFFFF).astype(np.int32))
        tfs.append(tf.astype(np.float32))
        lengths.append(length.astype(np.float32))
        n += len(words)
    term = np.concatenate(terms) if terms else np.empty(0, dtype=np.int32)
    doc = np.concatenate(docs) if docs else np.empty(0, dtype=np.int32)
    tf = np.concatenate(tfs) if tfs else np.empty(0, dtype=np.float32)
    length = np.concatenate(lengths) if lengths else np.empty(0, dtype=np.float32)
    del terms, docs, tfs, lengths
    tokens = int(length.sum())
    df = np.bincount(term, minlength=len(vocab)).astype(np.float64)
    total_docs, total_tokens = n, tokens
    if corpus is not None:
        total_docs += corpus.docs
        total_tokens += corpus.tokens
        words_by_id = sorted(vocab, key=vocab.get)
        df += np.fromiter(
            (corpus.df[corpus.vocab[w]] if w in corpus.vocab else 0 for w in words_by_id),
            dtype=np.float64,
            count=len(vocab),
        )
    idf = np.log1p((total_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    avgdl = max(total_tokens / max(total_docs, 1), 1e-9)
    scores = idf[term] * tf / (tf + K1 * (1 - B + B * length[doc] / avgdl))
    del tf
    # CSC: the postings of each term together, documents ascending within a term
    order = np.lexsort((doc, term))
    np.save(directory / DATA, scores[order].astype(np.float32))
    del scores
    np.save(directory / INDICES, doc[order])
    del doc, order
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(np.bincount(term, minlength=len(vocab)), out=indptr[1:])
    np.save(directory / INDPTR, indptr)
    (directory / VOCAB).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (directory / PARAMS).write_text(
        json.dumps({"k1": K1, "b": B, "method": "lucene", "num_docs": n, "stopwords": STOPWORDS}),
        encoding="utf-8",
    )
    return {"docs": n, "tokens": tokens}


class Lexical:
    """A loaded BM25 index (memory-mapped); scoring is done on the precomputed score matrix."""

    def __init__(self, directory: Path, n_docs: int, stemmer: str | None, stopwords: str = STOPWORDS) -> None:
        self._vocab: dict[str, int] = json.loads((directory / VOCAB).read_text(encoding="utf-8"))
        # the CSC matrix holds each (term, document) BM25 score, computed at build time
        self._data = np.load(directory / DATA, mmap_mode="r")
        self._indices = np.load(directory / INDICES, mmap_mode="r")
        self._indptr = np.load(directory / INDPTR, mmap_mode="r")
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
