"""The audio prior is the symbolic engine's GPT with several token streams: shapes, cache, loss, checkpoints.

Random tiny models: these check the plumbing, never musical quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from audio_fakes import SmoothCodec, save_tiny_model_dir

from engine.audio.prior import AudioModel, load_prior, prior_config, special_token
from engine.checkpoints import AUDIO_PRIOR_TYPE, read_checkpoint
from engine.errors import ModelNotFoundError
from engine.nn.model import GPT, PRESETS, GPTConfig


def test_one_stream_gpt_is_unchanged() -> None:
    """The MIDI engine's GPT: same parameter names and shapes as before the audio streams existed, and a config
    without ``n_streams`` (every shipped checkpoint) still loads."""
    config = GPTConfig(**{**PRESETS["tiny"].to_dict(), "vocab_size": 100})
    shapes = {k: tuple(v.shape) for k, v in GPT(config).state_dict().items()}
    assert shapes["wte.weight"] == (100, 64) and shapes["lm_head.weight"] == (100, 64)
    assert sorted(shapes)[:4] == ["blocks.0.attn.proj.weight", "blocks.0.attn.qkv.weight", "blocks.0.ln_1.weight",
                                  "blocks.0.ln_2.weight"]  # fmt: skip
    old = {k: v for k, v in config.to_dict().items() if k != "n_streams"}
    assert GPTConfig.from_dict(old) == config
    logits, _ = GPT(config)(torch.zeros(2, 5, dtype=torch.long))
    assert logits.shape == (2, 5, 100)


def test_streams_shapes_loss_and_cache_agree() -> None:
    torch.manual_seed(0)
    codec = SmoothCodec(size=16)
    model = GPT(prior_config("tiny", codec)).eval()
    Q, V = 2, 17
    assert model.config.n_streams == Q and model.config.vocab_size == V and special_token(model.config) == 16
    idx = torch.randint(0, V, (3, Q, 20))
    logits, loss = model(idx, targets=idx)
    assert logits.shape == (3, Q, 20, V) and loss is not None and torch.isfinite(loss)
    ignored = idx.clone()
    ignored[:, 1] = -100
    _, loss_q0 = model(idx, targets=ignored)
    expected = torch.nn.functional.cross_entropy(logits[:, 0].reshape(-1, V), idx[:, 0].reshape(-1))
    assert loss_q0 is not None and torch.allclose(loss_q0, expected, atol=1e-5)
    # prefill + one step at a time against the cache = the full forward
    cache = model.new_cache(3)
    stepped = [model(idx[:, :, :8], cache=cache)[0]]
    for t in range(8, 20):
        stepped.append(model(idx[:, :, t : t + 1], cache=cache)[0])
    cached = torch.cat(stepped, dim=2)
    assert torch.allclose(cached, logits[:, :, 7:], atol=1e-4)
    with pytest.raises(ValueError, match="shaped"):
        model(torch.zeros(3, 20, dtype=torch.long))


def test_model_folder_round_trip(tmp_path: Path) -> None:
    folder = save_tiny_model_dir(tmp_path / "my-audio")
    ckpt = read_checkpoint(folder)
    assert ckpt.type == AUDIO_PRIOR_TYPE
    config = json.loads((folder / "config.json").read_text())
    assert config["codec"] == "codec" and config["codec_config"]["n_codebooks"] == 2
    model = AudioModel.load(ckpt)
    assert model.name == "my-audio" and model.codec.sample_rate == 8000 and model.special == 64
    again = load_prior(ckpt)
    idx = torch.randint(0, 65, (1, 2, 10))
    assert torch.equal(model.prior(idx)[0], again(idx)[0])


def test_model_folder_errors(tmp_path: Path) -> None:
    folder = save_tiny_model_dir(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["gpt"]["vocab_size"] = 33  # a prior trained on another codec
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError, match="weights do not match|another codec"):
        AudioModel.load(read_checkpoint(folder))
    other = save_tiny_model_dir(tmp_path / "n")
    for child in (other / "codec").iterdir():
        child.unlink()
    (other / "codec").rmdir()
    with pytest.raises(ModelNotFoundError, match="no codec folder"):
        AudioModel.load(read_checkpoint(other))
