"""dqt.convert on a tiny LLaMA-shaped model written in plain torch (the
module names of HuggingFace's LlamaForCausalLM; no transformers package),
then DQT training with dqt.optim.AdamW on a fixed random batch."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dqt

VOCAB, DIM, FFN, HEADS, LAYERS, SEQ, BATCH = 48, 32, 64, 4, 2, 12, 4


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rope(x, base=10000.0):
    """Rotary embedding over [B, H, T, D] (half-split layout, as HF)."""
    t, d = x.shape[-2], x.shape[-1]
    inv = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float32) / d)
    ang = torch.outer(torch.arange(t, dtype=torch.float32), inv)
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(DIM, DIM, bias=False)
        self.k_proj = nn.Linear(DIM, DIM, bias=False)
        self.v_proj = nn.Linear(DIM, DIM, bias=False)
        self.o_proj = nn.Linear(DIM, DIM, bias=False)

    def forward(self, x):
        b, t, _ = x.shape

        def heads(y):
            return y.view(b, t, HEADS, DIM // HEADS).transpose(1, 2)

        q, k, v = rope(heads(self.q_proj(x))), rope(heads(self.k_proj(x))), heads(self.v_proj(x))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, DIM))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(DIM, FFN, bias=False)
        self.up_proj = nn.Linear(DIM, FFN, bias=False)
        self.down_proj = nn.Linear(FFN, DIM, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = Attention()
        self.mlp = MLP()
        self.input_layernorm = RMSNorm(DIM)
        self.post_attention_layernorm = RMSNorm(DIM)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, DIM)
        self.layers = nn.ModuleList(DecoderLayer() for _ in range(LAYERS))
        self.norm = RMSNorm(DIM)

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = LlamaModel()
        self.lm_head = nn.Linear(DIM, VOCAB, bias=False)

    def forward(self, ids):
        return self.lm_head(self.model(ids))


PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def linear_names(model, cls):
    return sorted(n for n, m in model.named_modules() if type(m) is cls)


def test_convert_replaces_every_projection_and_keeps_the_head():
    torch.manual_seed(0)
    model = LlamaForCausalLM()
    floats = {n: m.weight.detach().clone() for n, m in model.named_modules()
              if type(m) is nn.Linear}
    out = dqt.convert(model, bits=4)
    assert out is model
    quant = linear_names(model, dqt.nn.QuantLinear)
    assert len(quant) == LAYERS * len(PROJ)
    assert all(n.rsplit(".", 1)[1] in PROJ for n in quant)
    assert linear_names(model, nn.Linear) == ["lm_head"]
    for n in quant:
        layer = model.get_submodule(n)
        ref = dqt.QuantizedWeight.from_float(floats[n], 4)
        assert layer.bits == 4 and not layer.ternary_inference
        assert torch.equal(layer.weight.q, ref.q) and layer.weight.delta == ref.delta
    # The forward still works and gives logits of the right shape.
    ids = torch.randint(0, VOCAB, (2, 5))
    assert model(ids).shape == (2, 5, VOCAB)


def test_convert_skip_options():
    model = dqt.convert(LlamaForCausalLM(), bits=1.58, skip=(), ternary_inference=True)
    assert linear_names(model, nn.Linear) == []
    assert model.lm_head.bits == 1.58 and model.lm_head.ternary_inference
    model = dqt.convert(LlamaForCausalLM(), bits=8, skip=lambda name, m: "mlp" in name)
    # A predicate replaces the default (the head is converted here).
    assert linear_names(model, nn.Linear) == sorted(
        f"model.layers.{i}.mlp.{p}" for i in range(LAYERS)
        for p in ("gate_proj", "up_proj", "down_proj"))
    model = dqt.convert(LlamaForCausalLM(), bits=8, skip="o_proj")
    assert linear_names(model, nn.Linear) == [f"model.layers.{i}.self_attn.o_proj"
                                              for i in range(LAYERS)]
    with pytest.raises(TypeError, match="skip"):
        dqt.convert(LlamaForCausalLM(), skip=3)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        dqt.convert("model")
    # A bare Linear becomes a QuantLinear; a shared Linear stays shared.
    assert isinstance(dqt.convert(nn.Linear(3, 2)), dqt.nn.QuantLinear)
    shared = nn.Linear(4, 4)
    seq = dqt.convert(nn.Sequential(shared, nn.ReLU(), shared))
    assert isinstance(seq[0], dqt.nn.QuantLinear) and seq[0] is seq[2]


@pytest.mark.parametrize("bits", [8, 4, 1.58])
def test_converted_llama_trains(bits):
    """30 AdamW steps on one fixed batch: the loss must fall below half its
    initial value (it reaches ~2% here) and the integers must move."""
    torch.manual_seed(0)
    model = dqt.convert(LlamaForCausalLM(), bits=bits)
    opt = dqt.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0, seed=42)
    n_quant = sum(1 for p in model.parameters() if dqt.nn.quantized_weight_of(p) is not None)
    assert n_quant == LAYERS * len(PROJ)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=torch.Generator().manual_seed(1))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    qs = {n: m.weight.q.clone() for n, m in model.named_modules()
          if isinstance(m, dqt.nn.QuantLinear)}
    losses, changed = [], 0
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(inputs).reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        stats = opt.step()
        assert len(stats) == n_quant and all(s.nonfinite == 0 for s in stats)
        changed += sum(s.changed for s in stats)
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0], losses
    assert changed > 0
    # The integer weights themselves moved (not only the float parameters).
    moved = sum(int((m.weight.q != qs[n]).sum()) for n, m in model.named_modules()
                if isinstance(m, dqt.nn.QuantLinear))
    assert moved > 0.01 * sum(q.numel() for q in qs.values())
