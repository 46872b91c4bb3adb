"""`tinygrad-rep train MODEL`: one module per model (autoencoder, word2vec, contrastive), each with
add_arguments(parser) and run(args) -> int, as every command. They parse and check the options
(commands/options.py), call the model's trainer (tinygrad_rep/models), and print the summary; the
models themselves know nothing of the command line.
"""
