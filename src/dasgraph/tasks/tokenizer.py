"""The word-level tokenizer of every network built here: a task's own (``Task.build_tokenizer``)
and the tiny test decoders' (``networks.tiny``). Built locally, so nothing is downloaded;
``save_pretrained`` makes it loadable with ``AutoTokenizer``."""
from __future__ import annotations

PAD_TOKEN = "<|endoftext|>"


def word_level(vocab, split: str, whitespace: bool = False):
    """A tokenizer whose token i is ``vocab[i]``; ``vocab[0]`` is the pad, which also stands for
    every piece outside ``vocab``. The text is cut into the matches of the regex ``split`` and
    the pieces between them; with ``whitespace`` it is first cut at white space, which is
    dropped."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pad = vocab[0]
    core = Tokenizer(models.WordLevel({tok: i for i, tok in enumerate(vocab)}, unk_token=pad))
    pieces = pre_tokenizers.Split(Regex(split), behavior="isolated")
    core.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pieces])
                          if whitespace else pieces)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=pad, eos_token=pad,
                                  unk_token=pad, pad_token=pad)
    tok.padding_side = "right"
    return tok
