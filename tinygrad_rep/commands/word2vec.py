"""`tinygrad-rep word2vec neighbors|analogy|evaluate`: query and score a vectors.txt file.

    tinygrad-rep word2vec neighbors war --vectors runs/word2vec/vectors.txt
    tinygrad-rep word2vec analogy king man woman --vectors runs/word2vec   # king - man + woman
    tinygrad-rep word2vec evaluate --vectors vectors.txt                    # analogies, WS-353, SimLex

--vectors takes a word2vec text-format file (ours or any other tool's) or a folder written by
`tinygrad-rep train word2vec` (its vectors.txt is used).
"""
import json
from pathlib import Path

from . import options


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("neighbors", help="nearest words by cosine similarity")
    p.add_argument("word")
    p.add_argument("-k", type=int, default=10, help="how many (default 10)")
    _vectors_option(p)
    p = sub.add_parser("analogy", help="3CosAdd: the words closest to A - B + C (king man woman -> queen)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("c")
    p.add_argument("-k", type=int, default=5, help="how many answers (default 5)")
    _vectors_option(p)
    p = sub.add_parser("evaluate", help="analogy accuracy, WordSim-353 and SimLex-999 Spearman")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    _vectors_option(p)


def _vectors_option(p):
    p.add_argument("--vectors", required=True, help="vectors.txt (word2vec text format) or a model folder")


def _load(path):
    from ..models.word2vec import WordVectors
    path = Path(path)
    if path.is_dir():
        path = path / "vectors.txt"
    return WordVectors.load(path)


def _known(wv, words):
    missing = [w for w in words if w not in wv]
    if missing:
        raise ValueError(f"not in the vocabulary of {len(wv):,} words: {', '.join(missing)} "
                         "(words are lowercase tokens)")


def run(args):
    if args.action in ("neighbors", "analogy"):
        options.positive("-k", args.k, integer=True)
    wv = _load(args.vectors)
    if args.action == "neighbors":
        word = args.word.lower()
        _known(wv, [word])
        print(f"nearest to {word!r} (cosine):")
        for w, s in wv.neighbors(word, args.k):
            print(f"  {s:7.4f}  {w}")
    elif args.action == "analogy":
        a, b, c = args.a.lower(), args.b.lower(), args.c.lower()
        _known(wv, [a, b, c])
        print(f"{a} - {b} + {c} =")
        for w, s in wv.analogy(a, b, c, args.k):
            print(f"  {s:7.4f}  {w}")
    else:
        ev = wv.evaluate()
        if args.json:
            print(json.dumps(ev, indent=2))
            return 0
        an = ev["analogy"]

        def f(x):
            return "n/a" if x is None else f"{x:.4f}"
        print(f"{len(wv):,} words, dim {wv.dim}")
        print(f"analogy accuracy {f(an['accuracy'])} on {an['covered']}/{an['total']} questions "
              f"(semantic {f(an['semantic']['accuracy'])}, syntactic {f(an['syntactic']['accuracy'])})")
        for name in ("wordsim353", "simlex999"):
            r = ev[name]
            print(f"{name} Spearman {f(r['spearman'])} on {r['covered']}/{r['total']} pairs")
    return 0
