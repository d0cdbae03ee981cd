import json

import gguf
import pytest
import torch
from safetensors import safe_open

from trainer.generation import SamplingSettings, TransformersBackend
from trainer.models import (
    LoraSettings,
    PolicyConfig,
    _smollm2_gguf_path,
    convert_smollm2,
    default_cache_dir,
    load_base_model,
    load_policy,
    lora_merged,
    pick_dtype,
)
from trainer.prompts import build_messages, encode_prompt, endpoint_docs, system_prompt


def test_tiny_random_is_the_same_small_model_every_time():
    first, tokenizer = load_base_model("tiny-random")
    second, _ = load_base_model("tiny-random")
    assert first.config.num_hidden_layers == 2 and first.config.vocab_size == len(tokenizer)
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )
    assert tokenizer.chat_template and tokenizer.pad_token_id is not None


def test_lora_settings_reach_the_adapter():
    settings = LoraSettings(rank=2, alpha=6, dropout=0.1, target_modules=["q_proj", "v_proj"])
    policy, _ = load_policy(PolicyConfig("tiny-random", settings))
    config = policy.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (2, 6, 0.1)
    assert set(config.target_modules) == {"q_proj", "v_proj"}
    trainable = [name for name, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert len(trainable) == 2 * 2 * 2  # 2 layers x 2 modules x (A, B)


def test_a_merged_adapter_gives_the_adapters_logits_and_leaves_the_base_weights_exactly_as_they_were():
    torch.manual_seed(0)
    policy, _ = load_policy(
        PolicyConfig("tiny-random", LoraSettings(rank=4, target_modules=["q_proj", "up_proj"]))
    )
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a fresh adapter is the identity; this one changes the logits
    ids = torch.tensor([[5, 17, 300, 42, 9]])
    base = {name: p.clone() for name, p in policy.named_parameters() if not p.requires_grad}
    with torch.no_grad():
        unmerged = policy(ids).logits
        with policy.disable_adapter():
            plain = policy(ids).logits
        with lora_merged(policy):
            assert any(p.ne(base[n]).any() for n, p in policy.named_parameters() if n in base)
            merged = policy(ids).logits
        after = policy(ids).logits
    assert not torch.allclose(unmerged, plain, atol=1e-3)
    assert torch.allclose(merged, unmerged, atol=1e-5)
    assert all(torch.equal(p, base[n]) for n, p in policy.named_parameters() if n in base)
    assert torch.equal(after, unmerged)  # the adapter runs unmerged again
    with torch.no_grad(), policy.disable_adapter(), lora_merged(policy):  # a disabled adapter stays out
        assert torch.equal(policy(ids).logits, plain)


def test_a_local_model_folder_loads_like_a_hub_id(tmp_path):
    model, tokenizer = load_base_model("tiny-random")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    again, again_tokenizer = load_base_model(str(tmp_path))
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)
    assert again_tokenizer.chat_template == tokenizer.chat_template


def test_the_cache_follows_the_var_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RLVR_VAR_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "models"


@pytest.fixture(scope="module")
def smollm2_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def gguf_tensors(*names):
    tensors = {t.name: t for t in gguf.GGUFReader(str(_smollm2_gguf_path())).tensors}
    return [torch.from_numpy(gguf.quants.dequantize(tensors[n].data, tensors[n].tensor_type)) for n in names]


def test_smollm2_converts_once_to_a_plain_safetensors_cache(smollm2_cache):
    folder = convert_smollm2(smollm2_cache)
    assert folder == smollm2_cache / "smollm2-135m"
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    written = (folder / "model.safetensors").stat().st_mtime_ns
    assert convert_smollm2(smollm2_cache) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == written
    embeddings, down = gguf_tensors("token_embd.weight", "blk.3.ffn_down.weight")
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        assert torch.equal(weights.get_tensor("model.embed_tokens.weight"), embeddings)
        assert torch.equal(weights.get_tensor("model.layers.3.mlp.down_proj.weight"), down)


def test_smollm2_from_the_cache_writes_a_json_call_and_stops_there(smollm2_cache):
    model, tokenizer = load_base_model("smollm2-135m", cache_dir=smollm2_cache)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    docs = endpoint_docs({"paths": {"/rest/api/3/issue/{issueIdOrKey}": {"get": {"summary": "Get issue"}}}})
    example = ('{"method": "GET", "path": "/rest/api/3/issue/OPS-1"}', "Status 200\n{}")
    messages = build_messages(system_prompt(docs), "Get the issue OPS-1.", [example])
    messages.append({"role": "user", "content": "Get the issue OPS-12."})
    prompt = encode_prompt(tokenizer, messages)
    (generation,) = TransformersBackend(model, tokenizer).generate(
        [prompt], SamplingSettings(max_new_tokens=40, temperature=0.0)
    )
    assert generation.text == '{"method": "GET", "path": "/rest/api/3/issue/OPS-12"}'
    assert generation.finish_reason == "json"


def test_dtypes_by_name_and_auto(monkeypatch):
    import trainer.models

    cpu = torch.device("cpu")
    assert pick_dtype(cpu) == torch.float32 and pick_dtype(cpu, "bf16") == torch.bfloat16
    assert pick_dtype(cpu, torch.float16) == torch.float16
    monkeypatch.setattr(trainer.models, "cpu_has_bf16", lambda: True)
    assert pick_dtype(cpu, "auto") == torch.bfloat16 and pick_dtype(cpu) == torch.float32
    monkeypatch.setattr(trainer.models, "cpu_has_bf16", lambda: False)
    assert pick_dtype(cpu, "auto") == torch.float32
    with pytest.raises(ValueError, match="unknown dtype"):
        pick_dtype(cpu, "int4")
    model, _ = load_base_model("tiny-random", dtype="bf16")
    assert next(model.parameters()).dtype == torch.bfloat16
