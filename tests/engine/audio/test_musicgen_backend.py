"""`--model musicgen:DIR`: a transformers MusicGen checkpoint continues an audio region through Segue's own audio
path (bar lock, windowed primed sampling, join, loudness).

The checkpoint is a tiny MusicGen built here with random weights (T5 + EnCodec + MusicGen decoder configs, a few
thousand parameters) and saved to tmp_path: it tests the plumbing and the token layout, never musical quality.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from audio_fakes import musical_region, write_region

transformers = pytest.importorskip("transformers", reason="the MusicGen backend needs `pip install 'segue[musicgen]'`")

from bridge import cli  # noqa: E402
from engine.api import Engine  # noqa: E402
from engine.audio.musicgen import MusicgenPrior, load_musicgen  # noqa: E402
from engine.audio.sampling import Draws, sample_frames  # noqa: E402
from engine.errors import ModelNotFoundError  # noqa: E402
from engine.local import LocalEngine  # noqa: E402

RATE = 44_100
CODEBOOK = 64


def tiny_musicgen(out: Path, max_positions: int = 160) -> Path:
    """A randomly initialised MusicGen: 8 kHz EnCodec, hop 160 (50 frames/s), 2 codebooks of 64 codes."""
    t5 = transformers.T5Config(vocab_size=32, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    encodec = transformers.EncodecConfig(
        sampling_rate=8000, audio_channels=1, num_filters=4, upsampling_ratios=[8, 5, 4], codebook_size=CODEBOOK,
        codebook_dim=8, hidden_size=8, num_lstm_layers=1, target_bandwidths=[0.6], use_causal_conv=False,
    )  # fmt: skip
    decoder = transformers.MusicgenDecoderConfig(
        vocab_size=CODEBOOK, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64,
        num_codebooks=2, max_position_embeddings=max_positions, pad_token_id=CODEBOOK, bos_token_id=CODEBOOK,
        decoder_start_token_id=CODEBOOK,
    )  # fmt: skip
    config = transformers.MusicgenConfig(
        text_encoder=t5.to_dict(), audio_encoder=encodec.to_dict(), decoder=decoder.to_dict()
    )
    torch.manual_seed(0)
    model = transformers.MusicgenForConditionalGeneration(config).eval()
    with torch.no_grad():  # EnCodec's codebooks start as zeros (they are learnt by k-means): give them entries
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def musicgen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_musicgen(tmp_path_factory.mktemp("musicgen") / "tiny-musicgen")


def segue(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    engine = LocalEngine(device="cpu")

    def factory(spec: str, **options: Any) -> Engine:
        return engine

    code = cli.main(list(argv), engine_factory=factory)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_musicgen_continues_on_the_bar_grid(
    tmp_path: Path, musicgen_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region_audio = musical_region(4.0, RATE, 2)  # 2 bars of 4/4 at 120 BPM, stereo
    region = write_region(tmp_path / "take.wav", region_audio, RATE)
    code, out, err = segue(
        capsys, "continue", str(region), "--tempo", "120", "--meter", "4/4", "--bars", "2", "--variants", "2",
        "--seed", "3", "--model", f"musicgen:{musicgen_dir}", "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "done" and job["kind"] == "audio" and job["model"] == "musicgen:tiny-musicgen"
    job_dir = tmp_path / "out" / job["id"]
    expected = 4 * RATE  # 2 bars at 120 BPM = 4 s, at the region's rate
    variants = []
    for variant in job["variants"]:
        audio, rate = sf.read(job_dir / variant["files"]["audio"], always_2d=True)
        full, _ = sf.read(job_dir / variant["files"]["full_audio"], always_2d=True)
        assert rate == RATE and audio.shape == (expected, 2), "exactly N bars at the region's rate and channels"
        assert full.shape == (region_audio.shape[1] + expected, 2)
        assert np.allclose(full[: region_audio.shape[1]], region_audio.T, atol=1e-4)
        variants.append(audio)
    assert not np.allclose(variants[0], variants[1]), "two seeds, two variants"
    # 200 new frames + the prompt do not fit 159 positions: sampling went on in a second window
    assert job["timings"]["audio_frames"] >= 200


def test_the_adapter_feeds_musicgen_its_own_token_layout(musicgen_dir: Path) -> None:
    """Step-by-step logits through the adapter equal one forward of MusicGen's decoder over the sequence laid out
    as transformers lays it out (a start column, then codebook q delayed by q, the pad id in the corners)."""
    model = load_musicgen(f"musicgen:{musicgen_dir}")
    prior = model.prior
    assert isinstance(prior, MusicgenPrior)
    Q, special = prior.config.n_streams, CODEBOOK
    torch.manual_seed(1)
    steps = torch.randint(0, CODEBOOK, (1, Q, 12))
    steps[0, 1, 0] = special  # codebook 1 starts one step late
    cache = prior.new_cache(1)
    first, _ = prior(steps[:, :, :8], cache=cache)
    second, _ = prior(steps[:, :, 8:], cache=cache)
    ours = torch.cat([first, second], dim=2)
    assert ours.shape == (1, Q, 12, CODEBOOK + 1) and bool(torch.isinf(ours[..., special]).all())
    hf_ids = torch.cat([torch.full((1, Q, 1), CODEBOOK), steps], dim=2).reshape(Q, 13)
    hidden = torch.zeros((1, 1, 32))
    with torch.inference_mode():
        reference = prior.model.decoder(
            input_ids=hf_ids, encoder_hidden_states=hidden, encoder_attention_mask=torch.zeros((1, 1), dtype=torch.long)
        ).logits.reshape(1, Q, 13, -1)[:, :, 1:]
    assert torch.allclose(ours[..., :CODEBOOK], reference, atol=1e-4)


def test_sampling_respects_the_prompt_and_the_seed(musicgen_dir: Path) -> None:
    model = load_musicgen(f"musicgen:{musicgen_dir}")
    wav = torch.from_numpy(musical_region(1.0, 8000, 1)[:, :8000]).float()[None]
    prompt = model.codec.encode(wav)[0]
    assert prompt.shape == (2, 50) and int(prompt.max()) < CODEBOOK
    a = sample_frames(model.prior, prompt, 30, Draws(seeds=[4, 5]))
    b = sample_frames(model.prior, prompt, 30, Draws(seeds=[4]))
    assert a.shape == (2, 2, 30) and int(a.max()) < CODEBOOK
    assert torch.equal(a[:1], b), "a variant depends only on its seed"
    assert model.codec.decode(a).shape == (2, 1, 30 * 160)


def test_bad_musicgen_folders_get_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelNotFoundError, match="is not a folder"):
        load_musicgen(f"musicgen:{tmp_path / 'missing'}")
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        load_musicgen(f"musicgen:{tmp_path}")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ModelNotFoundError, match="is not a MusicGen checkpoint.*'t5'"):
        load_musicgen(f"musicgen:{tmp_path}")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError, match="cannot read"):
        load_musicgen(f"musicgen:{tmp_path}")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "musicgen", "decoder": {}}))
    with pytest.raises(ModelNotFoundError, match="cannot load the MusicGen checkpoint"):
        load_musicgen(f"musicgen:{tmp_path}")  # a config without weights
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModelNotFoundError, match=r"needs the transformers package: pip install 'segue\[musicgen\]'"):
        load_musicgen(f"musicgen:{tmp_path}")


def test_the_cli_reports_a_bad_musicgen_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    region = write_region(tmp_path / "take.wav", musical_region(4.0, RATE, 1), RATE)
    code, _, err = segue(
        capsys, "continue", str(region), "--tempo", "120", "--model", f"musicgen:{tmp_path / 'nowhere'}",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 2 and "is not a folder" in err
