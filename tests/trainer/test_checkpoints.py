import json

import pytest
import torch

from trainer.checkpoints import load_checkpoint, read_checkpoint_info, save_checkpoint, swap_adapter
from trainer.models import load_base_model


def randomise_adapter(policy, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)


def adapter_state(policy):
    return {name: p.detach().clone() for name, p in policy.named_parameters() if "lora_" in name}


def logits(model, ids=(1, 9690, 198, 28120, 2)):
    with torch.no_grad():
        return model(input_ids=torch.tensor([list(ids)])).logits


def test_a_saved_adapter_loads_onto_a_fresh_base_exactly(make_policy, tmp_path):
    policy = make_policy()
    randomise_adapter(policy, seed=1)
    folder = save_checkpoint(
        policy, tmp_path / "v3", version=3, base_model="tiny-random", metrics={"reward": 0.5}
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",  # peft's model card
        "adapter_config.json",
        "adapter_model.safetensors",
        "checkpoint.json",
    ]
    assert read_checkpoint_info(folder) == {
        "format": 1,
        "version": 3,
        "base_model": "tiny-random",
        "metrics": {"reward": 0.5},
    }
    assert json.loads((folder / "adapter_config.json").read_text())["r"] == 4

    base, _ = load_base_model("tiny-random")
    loaded = load_checkpoint(base, folder)
    original, restored = adapter_state(policy), adapter_state(loaded)
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[name], restored[name]) for name in original)
    assert torch.equal(logits(policy), logits(loaded))
    assert not any(p.requires_grad for p in loaded.parameters())
    assert any(
        p.requires_grad for p in load_checkpoint(load_base_model("tiny-random")[0], folder, True).parameters()
    )


def test_saving_again_replaces_the_folder_and_leaves_no_temporary_files(make_policy, tmp_path):
    policy = make_policy()
    save_checkpoint(policy, tmp_path / "latest", version=1, base_model="tiny-random")
    save_checkpoint(policy, tmp_path / "latest", version=2, base_model="tiny-random")
    assert read_checkpoint_info(tmp_path / "latest")["version"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]


def test_a_worker_swaps_adapter_versions_in_place(make_policy, tmp_path):
    trained = make_policy()
    randomise_adapter(trained, seed=2)
    save_checkpoint(trained, tmp_path / "v7", version=7, base_model="tiny-random")
    worker = make_policy()
    assert not torch.equal(logits(worker), logits(trained))
    assert swap_adapter(worker, tmp_path / "v7") == 7
    assert torch.equal(logits(worker), logits(trained))


def test_an_adapter_of_another_shape_is_refused(make_policy, tmp_path):
    save_checkpoint(make_policy(rank=8, alpha=16), tmp_path / "r8", version=1, base_model="tiny-random")
    with pytest.raises((ValueError, RuntimeError)):
        swap_adapter(make_policy(rank=4), tmp_path / "r8")
