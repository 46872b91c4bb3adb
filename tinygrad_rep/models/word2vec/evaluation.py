"""Scoring word vectors against people: Google analogy accuracy (3CosAdd), and Spearman's rank
correlation with the human similarity scores of WordSim-353 and SimLex-999.

Each function takes a WordVectors (its .index, .unit) and returns a plain dict, so
WordVectors.evaluate* and the `word2vec evaluate` command print the same numbers.
"""
import math
import os

import numpy as np

from ...data import text


def analogy_accuracy(wv, questions=None, batch=512):
    """Google analogy accuracy by 3CosAdd over the questions whose four words are known.

    questions: (section, a, b, c, d) tuples ("a is to b as c is to d"; d should be the
    nearest word to b - a + c); default: data.load_analogies(). Returns accuracy overall,
    for the semantic and syntactic ("gram*") sections and per section, with coverage.
    """
    if questions is None:
        questions = text.load_analogies()
    known = [q for q in questions if all(w in wv.index for w in q[1:])]
    per = {}
    for q in questions:
        per.setdefault(q[0], [0, 0, 0])[2] += 1
    correct = np.zeros(len(known), dtype=bool)
    if known:
        ids = np.array([[wv.index[w] for w in q[1:]] for q in known], dtype=np.int64)
        correct[:] = analogy_nearest(wv, ids[:, :3], batch) == ids[:, 3]
    for q, ok in zip(known, correct):
        per[q[0]][0] += int(ok)
        per[q[0]][1] += 1

    def summary(names):
        ok = sum(per[n][0] for n in names)
        seen = sum(per[n][1] for n in names)
        total = sum(per[n][2] for n in names)
        return {"accuracy": ok / seen if seen else None, "correct": ok, "covered": seen,
                "total": total, "coverage": seen / total if total else None}

    sections = list(per)
    syn = [s for s in sections if s.startswith("gram")]
    sem = [s for s in sections if not s.startswith("gram")]
    out = summary(sections)
    out["semantic"] = summary(sem)
    out["syntactic"] = summary(syn)
    out["sections"] = {s: summary([s]) for s in sections}
    return out


def analogy_nearest(wv, abc, batch=512):
    """3CosAdd: for each row (a, b, c) of word ids, the id of the unit vector nearest to
    b - a + c, with a, b and c themselves excluded."""
    u = wv.unit
    found = np.empty(len(abc), dtype=np.int64)
    for s in range(0, len(abc), batch):
        a, b, c = abc[s:s + batch].T
        scores = (u[b] - u[a] + u[c]) @ u.T
        rows = np.arange(len(a))
        for col in (a, b, c):
            scores[rows, col] = -np.inf
        found[s:s + batch] = scores.argmax(axis=1)
    return found


def similarity_correlation(wv, pairs="wordsim353"):
    """Spearman correlation between cosine similarity and human scores, over the pairs
    whose two words are known. pairs: a set name ("wordsim353", "simlex999"), a path, or
    (w1, w2, score) tuples. Returns spearman, covered, total, coverage."""
    if isinstance(pairs, (str, os.PathLike)):
        pairs = text.load_similarity(pairs)
    known = [p for p in pairs if p[0] in wv.index and p[1] in wv.index]
    rho = None
    if len(known) >= 2:
        i = np.array([wv.index[p[0]] for p in known])
        j = np.array([wv.index[p[1]] for p in known])
        cos = np.einsum("nd,nd->n", wv.unit[i], wv.unit[j])
        rho = spearman(cos, np.array([p[2] for p in known]))
    return {"spearman": rho, "covered": len(known), "total": len(pairs),
            "coverage": len(known) / len(pairs) if pairs else None}


def rankdata(x):
    """Ranks 1..n of x, ties given the average of the ranks they span."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.concatenate(([True], xs[1:] != xs[:-1])) if n else np.zeros(0, bool)
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.concatenate((starts[1:], [n]))
    avg = (starts + ends + 1) / 2.0                 # mean of ranks start+1 .. end
    ranks = np.empty(n)
    ranks[order] = avg[group]
    return ranks


def spearman(x, y):
    """Spearman's rank correlation: Pearson's r of the tie-averaged ranks (nan if a side is constant)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"spearman: need two 1-D arrays of the same length, got {x.shape} and {y.shape}")
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry / den) if den > 0 else math.nan
