"""The codec's contract: shapes and lengths, determinism, the quantizer's EMA/restarts, save/load, bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.audio.codec import PRESETS, Codec, CodecConfig, load_codec, read_codec_config, save_codec
from engine.audio.codec_losses import reconstruction_metrics, si_sdr
from engine.errors import BadInputError, ModelNotFoundError

TINY = PRESETS["tiny"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: small convolutions only slow down with more, and the machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def codec() -> Codec:
    torch.manual_seed(0)
    model = Codec(TINY)
    model.train()
    with torch.no_grad():  # one training pass initialises the codebooks (k-means) so codes are not degenerate
        model(torch.randn(4, 1, 4000) * 0.3)
    return model.eval()


def _wav(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / TINY.sample_rate
    tone = 0.3 * torch.sin(2 * math.pi * 220 * t)
    return (tone + 0.05 * torch.randn(batch, 1, samples, generator=g)).clamp(-1, 1)


@pytest.mark.parametrize("samples", [1, 31, 32, 33, 1001, 4000])
def test_encode_decode_lengths(codec: Codec, samples: int) -> None:
    with torch.inference_mode():
        codes = codec.encode(_wav(2, samples))
        frames = math.ceil(samples / codec.hop_length)
        assert codes.shape == (2, codec.n_codebooks, frames)
        assert codes.dtype == torch.int64
        assert int(codes.min()) >= 0 and int(codes.max()) < codec.codebook_size
        audio = codec.decode(codes)
    assert audio.shape == (2, 1, frames * codec.hop_length)
    assert audio.dtype == torch.float32


def test_properties(codec: Codec) -> None:
    assert codec.sample_rate == 8000 and codec.hop_length == 32
    assert codec.frame_rate == pytest.approx(250.0)
    assert (codec.n_codebooks, codec.codebook_size) == (2, 64)
    for name in ("small", "design-50hz", "design-75hz", "design-86hz"):
        config = PRESETS[name]
        assert 50 <= config.frame_rate <= 90 and config.channels == 1


def test_deterministic_and_batch_independent(codec: Codec) -> None:
    wav = _wav(3, 1234, seed=1)
    with torch.inference_mode():
        a, b = codec.encode(wav), codec.encode(wav.clone())
        alone = codec.encode(wav[1:2])
        assert torch.equal(a, b)
        assert torch.equal(a[1:2], alone)
        x, y = codec.decode(a), codec.decode(a.clone())
    assert torch.equal(x, y)


def test_encode_does_not_update_codebooks(codec: Codec) -> None:
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    codec.train()
    try:
        with torch.no_grad():
            codec.encode(_wav(1, 500))
    finally:
        codec.eval()
    assert all(torch.equal(before[k], v) for k, v in codec.state_dict().items())


def test_quantizer_ema_and_dead_code_restart() -> None:
    torch.manual_seed(0)
    model = Codec(TINY).train()
    layer = model.quantizer.layers[0]
    wav = _wav(4, 2000)
    with torch.no_grad():
        model(wav)  # k-means init
        assert bool(layer.initialized)
        layer.idle_steps[:5] = 1000.0  # five dead codes
        before = layer.embed[:5].clone()
        model(wav)
    assert not torch.allclose(layer.embed[:5], before)  # restarted on batch vectors
    assert bool((layer.idle_steps[:5] <= 1).all()) and bool((layer.cluster_size[:5] > 0).all())


def test_config_json_round_trip_and_checks() -> None:
    data = json.loads(json.dumps(PRESETS["small"].to_dict()))
    assert CodecConfig.from_dict(data) == PRESETS["small"]
    with pytest.raises(ValueError, match="unknown codec config keys"):
        CodecConfig.from_dict({**data, "bogus": 1})
    with pytest.raises(ValueError, match="product of strides"):
        replace(TINY, hop_length=30)
    with pytest.raises(ValueError, match="mono"):
        replace(TINY, channels=2)


def test_bad_input(codec: Codec) -> None:
    with pytest.raises(BadInputError, match="mono"):
        codec.encode(torch.zeros(1, 2, 100))
    with pytest.raises(BadInputError, match="mono"):
        codec.encode(torch.zeros(100))
    with pytest.raises(BadInputError, match="empty"):
        codec.encode(torch.zeros(1, 1, 0))
    with pytest.raises(BadInputError, match="integers in 0..63"):
        codec.decode(torch.full((1, 2, 3), 64))
    with pytest.raises(BadInputError, match=r"\[batch, 2, frames\]"):
        codec.decode(torch.zeros(1, 3, 4, dtype=torch.long))


def test_save_load_round_trip(codec: Codec, tmp_path: Path) -> None:
    wav = _wav(2, 3000, seed=2)
    with torch.inference_mode():
        codes = codec.encode(wav)
        audio = codec.decode(codes)
    save_codec(codec, tmp_path / "f32")
    loaded = load_codec(tmp_path / "f32")
    assert loaded.config == codec.config and not loaded.training
    with torch.inference_mode():
        assert torch.equal(loaded.encode(wav), codes)
        assert torch.equal(loaded.decode(codes), audio)

    save_codec(codec, tmp_path / "f16", dtype=torch.float16, extra={"val_metrics": {"si_sdr": 1.0}})
    config, raw = read_codec_config(tmp_path / "f16")
    assert raw["weights_dtype"] == "float16" and raw["val_metrics"] == {"si_sdr": 1.0}
    assert raw["type"] == "segue-audio-codec" and config == codec.config
    half = load_codec(tmp_path / "f16")
    assert next(half.parameters()).dtype == torch.float32  # fp16 on disk, fp32 in memory
    assert (tmp_path / "f16" / "model.safetensors").stat().st_size < (
        tmp_path / "f32" / "model.safetensors"
    ).stat().st_size
    with torch.inference_mode():
        half_codes = half.encode(wav)
        assert float((half_codes == codes).float().mean()) > 0.9
        assert float(si_sdr(audio, half.decode(codes)).mean()) > 30.0  # decoding the same codes barely changes


def test_checkpoint_errors(codec: Codec, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not a folder"):
        load_codec(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_codec(tmp_path / "empty")
    folder = save_codec(codec, tmp_path / "ok")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(ModelNotFoundError, match="corrupt or truncated"):
        load_codec(folder)
    weights.unlink()
    with pytest.raises(ModelNotFoundError, match="no model.safetensors"):
        load_codec(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError, match="corrupt"):
        load_codec(folder)
    (folder / "config.json").write_text(json.dumps({"type": "symbolic-gpt"}))
    with pytest.raises(ModelNotFoundError, match="no 'codec' section"):
        load_codec(folder)
    other = save_codec(Codec(replace(TINY, codebook_size=32)), tmp_path / "other")
    (other / "config.json").write_text(json.dumps({"type": "segue-audio-codec", "codec": TINY.to_dict()}))
    with pytest.raises(ModelNotFoundError, match="does not match its config"):
        load_codec(other)


def test_metrics_on_identical_and_noisy_audio() -> None:
    clean = _wav(2, 8000)
    same = reconstruction_metrics(clean, clean, 8000)
    assert same["stft_distance"] == pytest.approx(0.0, abs=1e-6)
    assert same["mel_distance"] == pytest.approx(0.0, abs=1e-6)
    assert same["si_sdr"] > 60
    noisy = reconstruction_metrics(clean, clean + 0.1 * torch.randn_like(clean), 8000)
    assert noisy["mel_distance"] > 0.01 and 0 < noisy["si_sdr"] < 20
