"""A tiny random BLIP captioner (image -> text) and its processor, for /describe in tests and the demo.

Built with transformers' own classes and saved with ``save_pretrained``, so it loads through the
same code as Salesforce/blip-image-captioning-*: its captions are random words of a small vocabulary.
"""

from __future__ import annotations

from pathlib import Path

from gpu_worker.tiny import WORDS

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def make_describe(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = [*SPECIALS, *dict.fromkeys(WORDS), "[DEC]"]  # BLIP starts a caption with [DEC]
    # transformers 5 takes `vocab=`; the old `vocab_file=` is silently ignored (a 6-token vocabulary)
    start = "[DEC]"
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, bos_token=start)
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"tiny tokenizer lost its vocabulary ({len(tokenizer)} of {len(vocab)} tokens)")
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BlipConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "encoder_hidden_size": 32,
            "intermediate_size": 37,
            "projection_dim": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "bos_token_id": vocab.index("[DEC]"),
            "eos_token_id": vocab.index("[SEP]"),
            "sep_token_id": vocab.index("[SEP]"),
            "pad_token_id": vocab.index("[PAD]"),
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "projection_dim": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=32,
        image_text_hidden_size=32,
    )
    model = BlipForConditionalGeneration(config)
    for parameter in model.parameters():  # the default init is near zero: every caption the same
        torch.nn.init.normal_(parameter, std=0.5)
    model.save_pretrained(folder)
    return folder
