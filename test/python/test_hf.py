"""A transformers LlamaForCausalLM converted with dqt.convert: save_pretrained
/ dqt.from_pretrained round-trips exactly, transformers' own from_pretrained
refuses the checkpoint loudly, and HF Trainer trains it with dqt.optim
(max_grad_norm, gradient accumulation, resume_from_checkpoint bit-exact)."""
import json

import pytest
import torch

import dqt

transformers = pytest.importorskip("transformers")  # installed by scripts/setup.sh


def tiny_llama(seed=0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=False)
    return transformers.LlamaForCausalLM(config)


def batch(seed, n=4, seq=16):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 64, (n, seq), generator=g)
    return {"input_ids": ids, "labels": ids.clone()}


def quantized_names(model):
    return sorted(n for n, m in model.named_modules() if isinstance(m, dqt.nn.QuantLinear))


def test_convert_counts_every_parameter():
    model = tiny_llama()
    n = model.num_parameters()
    dqt.convert(model, bits=4)
    assert model.num_parameters() == n
    assert model.config.quantization_config["quant_method"] == "dqt"
    assert model.config.quantization_config["modules"] == quantized_names(model)


@pytest.mark.parametrize("kw", [dict(bits=8), dict(bits=1.58, packed=True),
                                dict(bits=4, scale="row", scale_rule="absmax",
                                     ternary_inference=True)])
def test_save_pretrained_round_trips_exactly(tmp_path, kw):
    model = dqt.convert(tiny_llama(), **kw)
    opt = dqt.optim.AdamW(model.parameters(), lr=1e-2)
    model(**batch(1)).loss.backward()
    opt.step()  # the saved integers are not the initialization's
    model.save_pretrained(tmp_path)
    loaded = dqt.from_pretrained(tmp_path)
    assert quantized_names(loaded) == quantized_names(model)
    for (n, a), (m, b) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n == m and type(a) is type(b)
        if isinstance(a, dqt.QuantizedTensor):
            assert torch.equal(a.q, b.q) and a.bits == b.bits and a.scale == b.scale
            assert a.packed == b.packed and a.scale_rule == b.scale_rule
        else:
            assert torch.equal(a, b)
    model.eval()
    x = batch(2)
    assert torch.equal(model(**x).logits, loaded(**x).logits)
    name = quantized_names(model)[0]
    assert loaded.get_submodule(name).ternary_inference == kw.get("ternary_inference", False)


def test_mismatches_fail_loudly(tmp_path):
    model = dqt.convert(tiny_llama(), bits=8)
    model.save_pretrained(tmp_path)
    # transformers' own loader refuses instead of loading random projections.
    with pytest.raises(ValueError, match="dqt.from_pretrained"):
        transformers.LlamaForCausalLM.from_pretrained(tmp_path)
    # A float checkpoint is not dqt's.
    float_dir = tmp_path / "float"
    tiny_llama().save_pretrained(float_dir)
    with pytest.raises(ValueError, match="not a dqt checkpoint"):
        dqt.from_pretrained(float_dir)
    # A config listing a layer the checkpoint has no integers for.
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["quantization_config"]["modules"].append("lm_head")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="no .*lm_head.weight_q"):
        dqt.from_pretrained(tmp_path)


class Batches(torch.utils.data.Dataset):
    """Counting sequences (token t+1 follows t): learnable in a few steps."""

    def __init__(self, n=32):
        self.items = []
        for i in range(n):
            ids = (torch.arange(16) + 5 * i) % 64
            self.items.append({"input_ids": ids, "labels": ids.clone()})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def trainer(out, model, max_steps, grad_accum=2, seed=7):
    opt = dqt.optim.AdamW(model.parameters(), lr=2e-2, seed=seed)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + 0.1 * s))
    args = transformers.TrainingArguments(
        output_dir=str(out), max_steps=max_steps, per_device_train_batch_size=2,
        gradient_accumulation_steps=grad_accum, max_grad_norm=0.5, save_steps=4,
        save_strategy="steps", logging_steps=1, report_to=[], seed=seed,
        use_cpu=True, dataloader_num_workers=0, disable_tqdm=True)
    return transformers.Trainer(model=model, args=args, train_dataset=Batches(),
                                optimizers=(opt, sched))


def test_trainer_trains_and_resumes_bit_exactly(tmp_path):
    model = dqt.convert(tiny_llama(), bits=8)
    t = trainer(tmp_path / "a", model, max_steps=8)
    t.train()
    losses = [h["loss"] for h in t.state.log_history if "loss" in h]
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.1
    # Clipping saw every gradient: the logged norm is the norm of all of them.
    assert all("grad_norm" in h for h in t.state.log_history if "loss" in h)

    resumed_model = dqt.convert(tiny_llama(seed=3), bits=8)  # other initial weights
    r = trainer(tmp_path / "b", resumed_model, max_steps=8)
    # Continue from a's checkpoint at step 4: the same weights after step 8.
    r.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-4"))
    for (n, a), (m, b) in zip(model.named_parameters(), resumed_model.named_parameters()):
        if isinstance(a, dqt.QuantizedTensor):
            assert torch.equal(a.q, b.q), n
            assert torch.equal(a.quantized.dequantize(), b.quantized.dequantize()), n
        else:
            assert torch.equal(a.detach(), b.detach()), n
