"""Word2vec's settings: Word2VecConfig (the original word2vec's skip-gram defaults) and its checks."""
from __future__ import annotations

import dataclasses

import numpy as np

KIND = "word2vec"
FORMAT_VERSION = 1
TRAINERS = ("fused", "engine", "composed")


@dataclasses.dataclass
class Word2VecConfig:
    """Hyper-parameters; the defaults are the original word2vec's skip-gram settings.

    dim: vector size; window: largest context distance (each position draws 1..window);
    negative: negatives per pair; min_count: words seen fewer times are dropped; sample:
    subsampling threshold (0 turns it off); epochs; lr -> min_lr: linear decay over all epochs;
    batch_size: pairs per step (the learning rate is constant within a step; None: 8192 for
    the fused trainer, whose steps are exact per-pair SGD anyway, 1024 for the others, whose
    steps sum gradients taken at the step's start); seed;
    objective: "negative" or "softmax"; trainer (negative sampling): "fused" (SGNSPairs: one
    kernel call per batch runs the original's per-pair SGD in place), "engine" (F.embedding
    gathers -> sgns_loss on the fused forward/backward kernel -> backward -> sparse SGD of the
    summed gradients) or "composed" (as "engine", with F.skipgram_negative_sampling_loss built
    from elementary ops); max_vocab: keep only the most frequent words (None: all);
    chunk_words: corpus tokens turned into pairs at once (memory vs overhead).
    """
    dim: int = 100
    window: int = 5
    negative: int = 5
    min_count: int = 5
    sample: float = 1e-3
    epochs: int = 5
    lr: float = 0.025
    min_lr: float = 0.0001
    batch_size: int | None = None
    seed: int = 1
    objective: str = "negative"
    trainer: str = "fused"
    max_vocab: int | None = None
    chunk_words: int = 1 << 18

    def validate(self):
        """Raise ValueError naming the first bad setting; fill in batch_size when it is None."""
        if self.batch_size is None:
            fused = self.objective == "negative" and self.trainer == "fused"
            self.batch_size = 8192 if fused else 1024
        ints = {"dim": 1, "window": 1, "negative": 0, "min_count": 1, "epochs": 0, "batch_size": 1,
                "chunk_words": 1}
        for name, low in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"word2vec: {name} must be an integer >= {low}, got {v!r}")
        if self.window > 100:
            raise ValueError(f"word2vec: window must be <= 100, got {self.window}")
        if not (0 <= self.sample < 1):
            raise ValueError(f"word2vec: sample must be in [0, 1), got {self.sample}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ValueError(f"word2vec: need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr}, "
                             f"min_lr={self.min_lr}")
        if self.objective not in ("negative", "softmax"):
            raise ValueError(f"word2vec: objective must be 'negative' or 'softmax', got {self.objective!r}")
        if self.objective == "negative" and self.negative < 1:
            raise ValueError("word2vec: negative sampling needs negative >= 1")
        if self.trainer not in TRAINERS:
            raise ValueError(f"word2vec: trainer must be one of {', '.join(TRAINERS)}, got {self.trainer!r}")
        if self.max_vocab is not None and (not isinstance(self.max_vocab, (int, np.integer)) or self.max_vocab < 1):
            raise ValueError(f"word2vec: max_vocab must be None or an integer >= 1, got {self.max_vocab!r}")
        return self
