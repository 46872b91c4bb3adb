"""The benchmarks, shipped with the package as tinygrad_rep.benchmarks (`tinygrad-rep bench`).

They live in the repository's benchmarks/ folder and are installed from there. Each file has one
purpose:

    run.py            the runner: chosen suites in one process, then results.json, REPORT.md, plots
    bench_kernels.py  C kernels beside numpy/OpenBLAS and PyTorch, with the measured ceilings
    bench_ops.py      per-op overhead on tiny tensors; a tiny MLP's forward and backward
    bench_models.py   training steps of the autoencoder and SimCLR beside PyTorch
    bench_word2vec.py word2vec words/s and quality beside gensim
    bench_gradcheck.py  full against fast gradcheck
    bench_corpus_curve.py  word2vec analogy accuracy against corpus size, ours beside gensim
  measuring
    timing.py         interleaved rounds, medians, the thread CPU clock
    peers.py          the libraries compared: optional imports, thread counts, grad mode, environment
    measurements.py   a measurement as a record of results.json; side-by-side comparisons
    ceilings.py       FMA peak (fma_peak.c, compiled at run time) and copy bandwidth
    machine.py        what the run was measured on
    load.py           how busy the shared machine was
  reporting
    results.py        results.json read and written (atomically); the committed baseline
    values.py         ratios and table cells
    targets.py        the suites' targets evaluated
    report.py         REPORT.md (and the same as report.html)
    plots.py          PNG plots
    readme.py         the README's headline table
    compare.py        two runs compared, changes beyond the noise flagged

The modules import each other as siblings: the runner puts this folder first on sys.path, because
its process must set the environment of OpenBLAS and the thread pools before numpy is imported,
which importing this package's parent does. Import them the same way (see tinygrad_rep/commands/bench.py).
"""
