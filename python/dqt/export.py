"""Export a dqt-train run to the engines ternary models are served with.

    python -m dqt.export RUN --format hf   --out DIR         [--weights packed|float]
    python -m dqt.export RUN --format gguf --out MODEL.gguf  [--type tq2_0|tq1_0|f32]
                                                             [--embedding-type f32|f16]

RUN is a dqt-train run directory (checkpoints/step-N/ and tokenizer.model).

- ``hf``: a folder that ``transformers.AutoModelForCausalLM.from_pretrained``
  loads as ``BitNetForCausalLM`` (config.json, model.safetensors, tokenizer
  files). Ternary projections are written in BitNet's packed offline form
  (uint8, 4 values per byte, ``weight_scale`` = 1/delta, since transformers
  divides by it) under ``quantization_config`` ``quant_method: bitnet``;
  other bit widths as f32 weights holding q*delta exactly.
- ``gguf``: a llama.cpp file of architecture ``bitnet``: ternary projections
  in TQ2_0 (TQ1_0 with ``--type tq1_0``) with their delta in a per-tensor
  F32 ``.scale`` tensor (exact) and, for a per-row delta, the rows' ratio to
  it in the blocks' fp16 scales; the other tensors F32 (the token embedding
  F16 with ``--embedding-type f16``); the SentencePiece vocabulary.

The weights the engines get are the ones dqt-train's forward pass uses:
the integers of a ternary run; for n-bit runs with --ternary-inference and
bitnet runs, BitNet's absmean ternarization of the weights (``--ternarize``
asks for it on other runs: dqt-train's eval_ppl_ternary). Whatever an engine
cannot represent is refused with the reason; everything is validated before
anything is written, and the output appears complete or not at all
(docs/design.md, "Export").
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field

import numpy as np
import torch

PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
               "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
               "mlp.down_proj")
RMS_EPS = 1e-6        # dqt-train's RMSNorm
ROPE_THETA = 10000.0  # dqt-train's RoPE (half-split pairs, HF's rotate_half)


class ExportError(Exception):
    """Input that cannot be exported as asked; the message says why."""


@dataclass
class Shape:
    dim: int
    ffn: int
    layers: int
    heads: int
    vocab: int
    seq_len: int
    tied: bool


@dataclass
class Method:
    """A dqt-train method label: fp32, bitnet,
    dqt-<bits>[-ti][-all][-packed][-rows][-absmax]. The scale rule changes
    how training chose each delta, not what q and delta mean: export reads
    both alike."""
    kind: str                 # fp32 | bitnet | dqt
    bits: str = ""            # dqt: "1.58" or "2".."8"
    ternary_inference: bool = False
    quantize_all: bool = False
    packed: bool = False
    rows: bool = False
    absmax: bool = False
    label: str = ""

    @property
    def ternary(self) -> bool:
        return self.kind == "dqt" and self.bits == "1.58"


@dataclass
class Quant:
    """An integer weight: q (int8, the weight's shape) and delta (f32 [1] or [rows])."""
    q: torch.Tensor
    delta: torch.Tensor

    def value(self) -> torch.Tensor:
        # QuantizedWeight::dequantize: one f32 product per element.
        d = self.delta if self.delta.numel() == 1 else self.delta.reshape(
            -1, *([1] * (self.q.dim() - 1)))
        return self.q.to(torch.float32) * d


@dataclass
class Ternary:
    """A projection as the engines take it: ternary t (int8) and its scale
    (f32 [1] per tensor or [rows]); the weight is t * delta."""
    t: torch.Tensor
    delta: torch.Tensor


@dataclass
class Run:
    path: str
    checkpoint: str
    tokenizer: str
    config: dict
    shape: Shape
    method: Method
    weights: dict = field(default_factory=dict)  # name -> Tensor | Quant


# --------------------------------------------------------------------------
# Reading a run


def _parse_method(label: str) -> Method:
    if label in ("fp32", "bitnet"):
        return Method(kind=label, label=label)
    m = re.fullmatch(r"dqt-(1\.58|[2-8])((?:-ti|-all|-packed|-rows|-absmax)*)", label)
    if not m:
        raise ExportError(f"unknown run.method '{label}' in the checkpoint")
    flags = m.group(2)
    return Method(kind="dqt", bits=m.group(1), ternary_inference="-ti" in flags,
                  quantize_all="-all" in flags, packed="-packed" in flags,
                  rows="-rows" in flags, absmax="-absmax" in flags, label=label)


def _newest_checkpoint(run: str) -> str:
    root = os.path.join(run, "checkpoints")
    steps = sorted(d for d in os.listdir(root)
                   if d.startswith("step-") and os.path.isdir(os.path.join(root, d))) \
        if os.path.isdir(root) else []
    if not steps:
        raise ExportError(f"{run} is no dqt-train run directory: no checkpoint under {root}")
    return os.path.join(root, steps[-1])


def _load(path: str):
    from . import _C
    if not os.path.isfile(path):
        raise ExportError(f"{path} is missing")
    try:
        return _C.load_checkpoint(path)
    except ValueError as e:
        raise ExportError(f"corrupted checkpoint: {e}") from None


def _unpack_ternary(data: torch.Tensor, shape, who: str) -> torch.Tensor:
    """The runtime's packed ternary storage: element i in byte i/4, bits
    2*(i%4), two's complement 2-bit codes (3 = -1)."""
    n = int(np.prod(shape))
    b = data.numpy()
    if b.dtype != np.uint8 or b.ndim != 1 or b.size != (n + 3) // 4:
        raise ExportError(f"corrupted checkpoint: {who} is not packed ternary storage of {n} weights")
    codes = (b[:, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & 3
    codes = codes.reshape(-1)[:n]
    if (codes == 2).any():
        raise ExportError(f"corrupted checkpoint: {who} holds an invalid ternary code")
    q = np.where(codes == 3, -1, codes).astype(np.int8)
    return torch.from_numpy(q.reshape(shape))


def weight_names(shape: Shape):
    """dqt-train's weights in model order (Model::weights) with their shapes."""
    d, f, v = shape.dim, shape.ffn, shape.vocab
    out = [("embed_tokens", (v, d))]
    for layer in range(shape.layers):
        p = f"layers.{layer}."
        out += [(p + "input_layernorm", (d,)), (p + "self_attn.q_proj", (d, d)),
                (p + "self_attn.k_proj", (d, d)), (p + "self_attn.v_proj", (d, d)),
                (p + "self_attn.inner_attn_ln", (d,)), (p + "self_attn.o_proj", (d, d)),
                (p + "post_attention_layernorm", (d,)), (p + "mlp.gate_proj", (f, d)),
                (p + "mlp.up_proj", (f, d)), (p + "mlp.ffn_layernorm", (f,)),
                (p + "mlp.down_proj", (d, f))]
    out.append(("norm", (d,)))
    if not shape.tied:
        out.append(("lm_head", (v, d)))
    return out


def is_projection(name: str) -> bool:
    return name.endswith(PROJECTIONS)


def load_run(run: str, checkpoint: str | None = None,
             tokenizer: str | None = None) -> Run:
    """Reads and validates a dqt-train run: every weight by name, its shape
    and grid checked against the run's configuration."""
    if not os.path.isdir(run):
        raise ExportError(f"{run} is not a directory")
    ckpt = checkpoint or _newest_checkpoint(run)
    tensors, meta = _load(os.path.join(ckpt, "model.safetensors"))
    cfg = {k: v for k, v in meta.items() if k.startswith("run.")}
    for key in ("run.method", "run.shape", "run.seq_len"):
        if key not in cfg:
            raise ExportError(f"{ckpt}/model.safetensors is no dqt-train checkpoint: no '{key}'")
    method = _parse_method(cfg["run.method"])
    try:
        d, f, L, H, V = (int(x) for x in cfg["run.shape"].split("/"))
    except ValueError:
        raise ExportError(f"bad run.shape '{cfg['run.shape']}' in the checkpoint") from None
    shape = Shape(d, f, L, H, V, int(cfg["run.seq_len"]),
                  cfg.get("run.tie_embeddings") == "1")
    r = Run(run, ckpt, tokenizer or os.path.join(run, "tokenizer.model"), cfg, shape, method)

    names = weight_names(shape)
    quantized = [(n, s) for n, s in names
                 if method.kind == "dqt" and (is_projection(n) or method.quantize_all)]
    qset = {n for n, _ in quantized}
    for name, s in names:
        if name in qset:
            continue
        t = tensors.get("param." + name)
        if t is None and f"fp8.{name}.master" in tensors:
            # The fp8 environment's float GEMM weights (docs/numerics.md,
            # "Precision environments"): an f16 master copy with a scale.
            raise ExportError(f"{ckpt}: '{name}' is an FP8 weight of the fp8 environment; "
                              "exporting those is not supported yet")
        if t is None or tuple(t.shape) != s or t.dtype != torch.float32:
            raise ExportError(f"{ckpt}: 'param.{name}' missing or not f32{list(s)}")
        r.weights[name] = t
    if quantized:
        qt, qmeta = _load(os.path.join(ckpt, "dqt-optimizer.safetensors"))
        for p, (name, s) in enumerate(quantized):
            key = f"param.{p}."
            grid = qmeta.get(key + "grid")
            want = "ternary" if method.ternary else f"{method.bits}-bit"
            if grid != want or key + "q" not in qt or key + "delta" not in qt:
                raise ExportError(f"{ckpt}/dqt-optimizer.safetensors: parameter {p} ({name}) "
                                  f"is not a {want} weight of this run")
            q = qt[key + "q"]
            if qmeta.get(key + "storage") == "packed-ternary":
                q = _unpack_ternary(q, s, f"parameter {p} ({name})")
            if tuple(q.shape) != s or q.dtype != torch.int8:
                raise ExportError(f"{ckpt}: parameter {p} ({name}) is {q.dtype}{list(q.shape)}, "
                                  f"the run's shape is int8{list(s)}")
            delta = qt[key + "delta"].to(torch.float32).reshape(-1)
            if delta.numel() not in (1, s[0]) or not bool(torch.isfinite(delta).all()) \
                    or not bool((delta > 0).all()):
                raise ExportError(f"{ckpt}: parameter {p} ({name}) has an invalid delta")
            lo, hi = (-1, 1) if method.ternary else (-(1 << (int(method.bits) - 1)),
                                                      (1 << (int(method.bits) - 1)) - 1)
            if int(q.min()) < lo or int(q.max()) > hi:
                raise ExportError(f"{ckpt}: parameter {p} ({name}) leaves its grid [{lo}, {hi}]")
            r.weights[name] = Quant(q.contiguous(), delta.contiguous())
    return r


# --------------------------------------------------------------------------
# What the engines get


def ternarize(w: torch.Tensor) -> Ternary:
    """BitNet's absmean ternarization, as dqt::nn::ternarize computes it
    (t/s is that function's value): s = 1/max(mean|w|, 1e-5), t = clamp(round(w*s))."""
    s = 1.0 / w.abs().mean().clamp_min(1e-5)
    t = (w * s).round().clamp(-1, 1).to(torch.int8)
    return Ternary(t, (1.0 / s).reshape(1).to(torch.float32))


def projection(run: Run, name: str, ternarize_all: bool):
    """The weight dqt-train's forward pass multiplies by: a Ternary, or an
    f32 tensor (q*delta exactly, or the float parameter)."""
    w = run.weights[name]
    m = run.method
    if m.ternary:
        return Ternary(w.q, w.delta)
    if m.kind == "bitnet" or m.ternary_inference or ternarize_all:
        return ternarize(w.value() if isinstance(w, Quant) else w)
    return w.value() if isinstance(w, Quant) else w


def float_value(run: Run, name: str) -> torch.Tensor:
    w = run.weights[name]
    return (w.value() if isinstance(w, Quant) else w).contiguous()


def projections(run: Run, ternarize_all: bool) -> dict:
    return {n: projection(run, n, ternarize_all) for n in run.weights if is_projection(n)}


def _require_ternary(run: Run, projs: dict, asked: str):
    if not all(isinstance(p, Ternary) for p in projs.values()):
        raise ExportError(
            f"{asked} needs ternary projections, but this run ({run.method.label}) has "
            f"{run.method.bits or 'float'}{'-bit' if run.method.bits else ''} weights: "
            "train with --bits 1.58 or --ternary-inference, or pass --ternarize "
            "(BitNet's absmean ternarization, dqt-train's eval_ppl_ternary)")


# --------------------------------------------------------------------------
# Writing


def _tokenizer_vocab(run: Run):
    """(pieces, scores, types) of the run's SentencePiece model, as llama.cpp's
    converter reads them; its size must be the model's vocabulary."""
    import sentencepiece as spm
    if not os.path.isfile(run.tokenizer):
        raise ExportError(f"the run's tokenizer {run.tokenizer} is missing (pass --tokenizer)")
    sp = spm.SentencePieceProcessor()
    try:
        sp.LoadFromFile(run.tokenizer)
    except Exception as e:  # noqa: BLE001 (sentencepiece raises OSError/RuntimeError)
        raise ExportError(f"{run.tokenizer} is no SentencePiece model: {e}") from None
    if sp.vocab_size() != run.shape.vocab:
        raise ExportError(f"{run.tokenizer} has {sp.vocab_size()} pieces, the model "
                          f"{run.shape.vocab}: not this run's tokenizer")
    return sp


def has_byte_pieces(sp) -> bool:
    return sum(sp.IsByte(i) for i in range(sp.vocab_size())) == 256


def _publish(path: str):
    """Ordinary permissions (the umask's) for what was written privately."""
    mask = os.umask(0)
    os.umask(mask)
    if os.path.isdir(path):
        os.chmod(path, 0o777 & ~mask)
        for f in os.listdir(path):
            os.chmod(os.path.join(path, f), 0o666 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


def _replace(tmp: str, out: str, force: bool):
    _publish(tmp)
    if os.path.lexists(out):
        if not force:
            raise ExportError(f"{out} exists (pass --force to replace it)")
        old = out + f".old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old) if os.path.isdir(old) else os.remove(old)
    else:
        os.replace(tmp, out)


def _pack_hf(t: torch.Tensor) -> torch.Tensor:
    """transformers' pack_weights: value t+1 of row i*R + r in bits 2i of byte row r (R = rows/4)."""
    rows = t.shape[0] // 4
    u = (t.to(torch.int16) + 1).to(torch.uint8)
    packed = torch.zeros((rows, t.shape[1]), dtype=torch.uint8)
    for i in range(4):
        packed |= u[i * rows:(i + 1) * rows] << (2 * i)
    return packed


HF_NAMES = {"embed_tokens": "model.embed_tokens.weight", "norm": "model.norm.weight",
            "lm_head": "lm_head.weight"}


def _hf_name(name: str) -> str:
    if name in HF_NAMES:
        return HF_NAMES[name]
    name = name.replace("self_attn.inner_attn_ln", "self_attn.attn_sub_norm")
    name = name.replace("mlp.ffn_layernorm", "mlp.ffn_sub_norm")
    return f"model.{name}.weight"


def build_hf(run: Run, weights: str = "auto", ternarize_all: bool = False):
    """(config, tensors) of the Hugging Face BitNet export; raises ExportError."""
    projs = projections(run, ternarize_all)
    ternary = all(isinstance(p, Ternary) for p in projs.values())
    if weights == "packed":
        _require_ternary(run, projs, "--weights packed")
    packed = ternary and weights != "float"
    tensors = {}
    for name in run.weights:
        if not is_projection(name):
            tensors[_hf_name(name)] = float_value(run, name)
            continue
        p = projs[name]
        if not packed:
            tensors[_hf_name(name)] = (p.t.to(torch.float32) * (p.delta if p.delta.numel() == 1
                                       else p.delta[:, None])).contiguous() \
                if isinstance(p, Ternary) else p.contiguous()
            continue
        if p.delta.numel() != 1 and not bool((p.delta == p.delta[0]).all()):
            raise ExportError(
                f"{name}: this run has one delta per output row (--scale row), and "
                "transformers' BitLinear holds one weight_scale per tensor: export to "
                "GGUF (TQ2_0 keeps a scale per row), or pass --weights float "
                "(f32 q*delta, without BitNet's activation quantization)")
        if p.t.shape[0] % 4:
            raise ExportError(f"{name}: {p.t.shape[0]} output rows; BitNet's packed "
                              "form needs a multiple of 4")
        base = _hf_name(name)
        tensors[base] = _pack_hf(p.t)
        # BitLinear computes (x_q @ t^T) / (input_scale * weight_scale).
        tensors[base[:-len("weight")] + "weight_scale"] = \
            (1.0 / p.delta[:1]).to(torch.float32)
    s = run.shape
    config = {
        "architectures": ["BitNetForCausalLM"],
        "model_type": "bitnet",
        "vocab_size": s.vocab,
        "hidden_size": s.dim,
        "intermediate_size": s.ffn,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.heads,
        "head_dim": s.dim // s.heads,
        "hidden_act": "silu",
        "max_position_embeddings": s.seq_len,
        "rms_norm_eps": RMS_EPS,
        "rope_theta": ROPE_THETA,
        "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA},
        "attention_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": s.tied,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": None,
        "dtype": "float32",
        "dqt": {"run_method": run.method.label, "checkpoint": os.path.basename(run.checkpoint),
                "ternarized": bool(ternarize_all)},
    }
    if packed:
        config["quantization_config"] = {
            "quant_method": "bitnet", "linear_class": "bitlinear",
            "quantization_mode": "offline", "modules_to_not_convert": ["lm_head"],
            "use_rms_norm": False}
    return config, tensors, packed


def write_hf(run: Run, out: str, weights: str = "auto", ternarize_all: bool = False,
             force: bool = False) -> bool:
    from safetensors.torch import save_file
    config, tensors, packed = build_hf(run, weights, ternarize_all)
    _tokenizer_vocab(run)  # validates the tokenizer before writing
    if os.path.lexists(out) and not force:
        raise ExportError(f"{out} exists (pass --force to replace it)")
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(out)}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        save_file(tensors, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        with open(os.path.join(tmp, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": 1, "eos_token_id": 2}, f, indent=2)
        shutil.copyfile(run.tokenizer, os.path.join(tmp, "tokenizer.model"))
        with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
            # dqt-train encodes text without BOS, with EOS after each line.
            json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": False,
                       "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                       "unk_token": "<unk>", "model_max_length": run.shape.seq_len,
                       "legacy": False}, f, indent=2)
        with open(os.path.join(tmp, "special_tokens_map.json"), "w") as f:
            json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, f,
                      indent=2)
        _replace(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return packed


GGUF_NAMES = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
              "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.inner_attn_ln": "attn_sub_norm", "self_attn.o_proj": "attn_output",
              "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
              "mlp.up_proj": "ffn_up", "mlp.ffn_layernorm": "ffn_sub_norm",
              "mlp.down_proj": "ffn_down"}


def _gguf_name(name: str) -> str:
    if name == "embed_tokens":
        return "token_embd"
    if name == "norm":
        return "output_norm"
    m = re.fullmatch(r"layers\.(\d+)\.(.+)", name)
    return f"blk.{m.group(1)}.{GGUF_NAMES[m.group(2)]}"


def ternary_blocks(p: Ternary, qtype):
    """TQ1_0/TQ2_0 bytes of a ternary projection and its F32 `.scale`.

    The tensor's scale (per tensor: delta; per row: max delta) goes to the
    F32 scale tensor llama.cpp multiplies the product by, so a per-tensor
    delta stays exact; each block's fp16 scale holds its row's ratio
    delta_r / max delta (1 per tensor, exact), rounded to fp16 per row."""
    import gguf
    ref = p.delta.max().reshape(1).to(torch.float32)
    ratio = (p.delta / ref).to(torch.float32)
    if float(ratio.min()) < 2.0 ** -14:
        # Below fp16's normal range a block scale loses precision.
        raise ExportError("a row's delta is below 2^-14 of its tensor's largest: "
                          "fp16 block scales cannot hold it to 2^-11")
    x = p.t.to(torch.float32) * (ratio if ratio.numel() == 1 else ratio[:, None])
    # gguf's quantizer: block scale d = max|x| (the row's ratio, or 0 for an
    # all-zero block) and t = round(x / d), which gives back the integers.
    return gguf.quants.quantize(x.numpy(), qtype), ref.numpy()


def build_gguf_tensors(run: Run, qtype_name: str = "tq2_0", ternarize_all: bool = False,
                       embedding_type: str = "f32"):
    """[(gguf name, numpy array, raw dtype or None)]; raises ExportError."""
    import gguf
    if embedding_type not in ("f32", "f16"):
        raise ExportError(f"--embedding-type must be f32 or f16, got '{embedding_type}'")
    s = run.shape
    projs = projections(run, ternarize_all)
    qtype = {"tq2_0": gguf.GGMLQuantizationType.TQ2_0,
             "tq1_0": gguf.GGMLQuantizationType.TQ1_0, "f32": None}.get(qtype_name, "?")
    if qtype == "?":
        raise ExportError(f"--type must be tq2_0, tq1_0 or f32, got '{qtype_name}'")
    if qtype is not None:
        _require_ternary(run, projs, f"--type {qtype_name}")
    if not s.tied:
        raise ExportError(
            "llama.cpp's bitnet graph has no output tensor: its LM head is the token "
            "embedding, and this run has a separate lm_head: train with --tie-embeddings")
    if qtype is not None:
        for name, p in projs.items():
            if p.t.shape[1] % 256:
                raise ExportError(
                    f"{name}: rows of {p.t.shape[1]} weights; {qtype_name.upper()} packs rows "
                    "in blocks of 256: train with --dim and --ffn multiples of 256")
    out = []
    for name in run.weights:
        g = _gguf_name(name)
        if not is_projection(name):
            v = float_value(run, name).numpy()
            if name == "embed_tokens" and embedding_type == "f16":
                if not np.isfinite(v.astype(np.float16)).all():
                    raise ExportError("the token embedding overflows f16")
                v = v.astype(np.float16)
            out.append((g + ".weight", v, None))
            continue
        p = projs[name]
        if qtype is None:
            w = (p.t.to(torch.float32) * (p.delta if p.delta.numel() == 1 else p.delta[:, None])) \
                if isinstance(p, Ternary) else p
            out.append((g + ".weight", w.contiguous().numpy(), None))
            continue
        blocks, scale = ternary_blocks(p, qtype)
        out.append((g + ".weight", blocks, qtype))
        out.append((g + ".scale", scale, None))
    return out


def write_gguf(run: Run, out: str, qtype_name: str = "tq2_0", ternarize_all: bool = False,
               force: bool = False, embedding_type: str = "f32"):
    import gguf
    tensors = build_gguf_tensors(run, qtype_name, ternarize_all, embedding_type)
    sp = _tokenizer_vocab(run)
    if not has_byte_pieces(sp):
        print("dqt.export: note: the tokenizer has no byte pieces (dqt-train "
              "--byte-fallback): llama.cpp's tokenizer aborts on text with characters "
              "outside the vocabulary, where SentencePiece gives <unk>; token ids work",
              file=sys.stderr)
    if os.path.lexists(out) and not force:
        raise ExportError(f"{out} exists (pass --force to replace it)")
    s = run.shape
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(out)}.tmp-{os.getpid()}")
    try:
        w = gguf.GGUFWriter(tmp, "bitnet")
        w.add_name(f"dqt {run.method.label}")
        w.add_context_length(s.seq_len)
        w.add_embedding_length(s.dim)
        w.add_feed_forward_length(s.ffn)
        w.add_block_count(s.layers)
        w.add_head_count(s.heads)
        w.add_head_count_kv(s.heads)
        w.add_rope_dimension_count(s.dim // s.heads)
        w.add_rope_freq_base(ROPE_THETA)
        w.add_layer_norm_rms_eps(RMS_EPS)
        w.add_vocab_size(s.vocab)
        w.add_file_type({"tq2_0": gguf.LlamaFileType.MOSTLY_TQ2_0,
                         "tq1_0": gguf.LlamaFileType.MOSTLY_TQ1_0,
                         "f32": gguf.LlamaFileType.ALL_F32}[qtype_name])
        types = gguf.TokenType
        pieces, scores, toktypes = [], [], []
        for i in range(sp.vocab_size()):
            pieces.append(sp.IdToPiece(i).encode("utf-8"))
            scores.append(sp.GetScore(i))
            toktypes.append(types.UNKNOWN if sp.IsUnknown(i) else types.CONTROL
                            if sp.IsControl(i) else types.UNUSED if sp.IsUnused(i)
                            else types.BYTE if sp.IsByte(i) else types.NORMAL)
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(pieces)
        w.add_token_scores(scores)
        w.add_token_types(toktypes)
        w.add_unk_token_id(sp.unk_id())
        w.add_bos_token_id(sp.bos_id())
        w.add_eos_token_id(sp.eos_id())
        # dqt-train encodes without BOS (and an EOS after each line).
        w.add_add_bos_token(False)
        w.add_add_eos_token(False)
        for name, data, raw in tensors:
            w.add_tensor(name, data, raw_dtype=raw)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        _replace(tmp, out, force)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m dqt.export",
        description="Export a dqt-train run to a Hugging Face BitNet folder or a "
                    "llama.cpp GGUF file (architecture bitnet, TQ2_0/TQ1_0).")
    ap.add_argument("run", help="dqt-train run directory (--out of the training)")
    ap.add_argument("--format", required=True, choices=["hf", "gguf"])
    ap.add_argument("--out", required=True, help="output folder (hf) or .gguf file")
    ap.add_argument("--checkpoint", help="checkpoint directory (default: the run's newest)")
    ap.add_argument("--tokenizer", help="SentencePiece model (default: RUN/tokenizer.model)")
    ap.add_argument("--weights", default="auto", choices=["auto", "packed", "float"],
                    help="hf: packed (BitNet's ternary form; an error for other runs), "
                         "float (f32 q*delta, no activation quantization) or auto "
                         "(packed when the projections are ternary)")
    ap.add_argument("--type", default="tq2_0",
                    help="gguf: tq2_0 (default), tq1_0 (ternary projections) or f32")
    ap.add_argument("--embedding-type", default="f32",
                    help="gguf: the token embedding (also the LM head) in f32 (default, "
                         "exact) or f16 (half the bytes, rounded)")
    ap.add_argument("--ternarize", action="store_true",
                    help="export BitNet's absmean ternarization of an n-bit or float run "
                         "(what dqt-train's eval_ppl_ternary evaluates)")
    ap.add_argument("--force", action="store_true", help="replace an existing output")
    a = ap.parse_args(argv)
    try:
        run = load_run(a.run, a.checkpoint, a.tokenizer)
        if a.format == "hf":
            packed = write_hf(run, a.out, a.weights, a.ternarize, a.force)
            if not packed:
                print("dqt.export: note: float projections (f32 q*delta): transformers "
                      "runs them without BitNet's 8-bit activation quantization, which "
                      "dqt-train's forward pass applies", file=sys.stderr)
            kind = "packed ternary" if packed else "float"
        else:
            write_gguf(run, a.out, a.type, a.ternarize, a.force, a.embedding_type)
            if a.embedding_type == "f16":
                print("dqt.export: note: token embedding rounded to f16 (also the LM "
                      "head): not exactly the trained model", file=sys.stderr)
            if a.type == "f32":
                print("dqt.export: note: F32 projections: llama.cpp runs them without "
                      "8-bit activation quantization, which dqt-train's forward pass "
                      "applies", file=sys.stderr)
            kind = a.type.upper()
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"dqt.export: {run.method.label} ({os.path.basename(run.checkpoint)}) -> "
          f"{a.out} ({a.format}, {kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
