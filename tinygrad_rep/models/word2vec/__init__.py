"""Word2vec skip-gram on a text corpus, trained through the engine, with its evaluation.

    from tinygrad_rep.models import word2vec as w2v
    model = w2v.train(tr.data.load_corpus("sotu"), w2v.Word2VecConfig(epochs=5, seed=1))
    model.wv.neighbors("war")                   # [(word, cosine), ...]
    model.wv.analogy("king", "man", "woman")     # king - man + woman -> [("queen", score), ...]
    model.wv.evaluate()                          # analogy accuracy, WordSim-353, SimLex-999

One epoch, as in the original word2vec:
  corpus ids -> frequent-word subsampling (a word w is kept with probability
                (sqrt(f_w / t) + 1) * t / f_w, t = sample * corpus size)
             -> skip-gram pairs with a dynamic window (each position draws its window b from
                1..window; every word within b positions in the same sentence is a context),
                in the original's order
             -> negatives drawn from unigram^0.75 (Walker alias table, backend kernel
                `sample_negatives`); a draw equal to the true word is drawn again
             -> mini-batches of pairs, each one step of one of three trainers:
  "fused" (default)  SGNSPairs with lr > 0: one C kernel call (`sgns_sgd`) runs the original's
                     inner loop over the batch: per pair, loss, gradient and the SGD update of
                     the rows it touched, before the next pair is read. The same op with lr = 0
                     is a pure engine op (gather -> fused loss kernel; backward scatter-adds),
                     and its gradient is what the update applies (both are tested).
  "engine"           the engine's own path: F.embedding gathers of the rows the batch touches
                     (C gather kernel) -> sgns_loss (a Function on the fused forward/backward
                     kernel `sgns_forward_backward`) -> backward -> sparse SGD
                     W[rows] -= lr * grad (C scatter-add kernel; repeated rows add up; no
                     gradient of a whole matrix is formed). Updates are summed over the batch,
                     all taken at the parameters of the batch's start.
  "composed"         as "engine", with F.skipgram_negative_sampling_loss composed from
                     elementary ops in place of the fused loss kernel (what the profile of the
                     engine path started from).
The learning rate decays linearly from `lr` to `min_lr` over all epochs (per batch). The
corpus is cut into chunks (chunk_words tokens); each chunk's randomness comes from a numpy
Generator seeded with (seed, epoch, chunk) (the sampling kernel draws from counter-based streams
keyed by seeds it hands out, and the per-pair kernel is sequential), so on one thread a seed
gives the same vectors on every run. With `threads` > 1 the fused trainer trains that many
chunks at once without locks, as the original's threads do (Hogwild-style; each thread keeps
its own copy of the frequent words' rows, merged every few steps, see trainer.py): the vectors
then vary slightly from run to run, their quality does not.

The full-softmax variant (objective="softmax") scores every word of the vocabulary for each
pair (matmul + the fused log-softmax/cross-entropy C kernel): exact, but O(V) per pair, which
is why negative sampling exists; it is meant for small vocabularies.

The package's rooms: config (Word2VecConfig), vocabulary (Vocab, build_vocab, encode), sampling
(subsampling, skip-gram pairs, unigram^0.75 negatives), trainer (train), model (Word2Vec, its
folder), vectors (WordVectors, vectors.txt) and evaluation (analogies, word similarity). The
command line lives in tinygrad_rep/commands (train/word2vec.py, word2vec.py).
"""
__all__ = ["Word2VecConfig", "KIND", "FORMAT_VERSION", "TRAINERS", "Vocab", "EncodedCorpus", "build_vocab",
           "encode", "keep_probabilities", "alias_table", "alias_probabilities", "UnigramSampler", "subsample",
           "skipgram_pairs", "train", "set_threads", "Word2Vec", "load_model", "WordVectors", "read_vectors",
           "write_vectors", "analogy_accuracy", "similarity_correlation", "rankdata", "spearman",
           # the SGNS ops the trainers use (they live in ops/sgns.py)
           "SGNSLoss", "SGNSPairs", "sgns_gradients", "sgns_loss", "sgns_pairs", "sparse_sgd_"]

from ...ops.sgns import SGNSLoss, SGNSPairs, sgns_gradients, sgns_loss, sgns_pairs, sparse_sgd_  # noqa: F401
from .config import FORMAT_VERSION, KIND, TRAINERS, Word2VecConfig  # noqa: F401
from .evaluation import analogy_accuracy, rankdata, similarity_correlation, spearman  # noqa: F401
from .model import Word2Vec, load_model  # noqa: F401
from .sampling import (UnigramSampler, alias_probabilities, alias_table, keep_probabilities,  # noqa: F401
                       skipgram_pairs, subsample)
from .trainer import set_threads, train  # noqa: F401
from .vectors import WordVectors, read_vectors, write_vectors  # noqa: F401
from .vocabulary import EncodedCorpus, Vocab, build_vocab, encode  # noqa: F401
