"""The pipeline's stage scripts, importable (``parse_args(argv)`` and ``main(argv=None)`` each).

The thesis's script names at the repository root (``python train_gpt2.py ...``) are two-line
entry points into these modules, and ``pip install .`` installs each as a console script of
the same name (``train_gpt2 --help``).
"""
