"""Audio training data for the codec (and the audio prior): rendered from the music21 corpus, or any audio folder.

``python -m engine.audio.data --out data/audio --minutes 60``
    renders pieces of the MIDI corpus made by :mod:`engine.symbolic.corpus` (``--corpus``, default
    ``data/corpus``; built first when missing, which needs ``music21``) through General MIDI soundfonts.
``python -m engine.audio.data --out data/my-audio --audio-dir ~/Music/stems``
    converts a folder of WAV/FLAC/AIFF/OGG files (any rate, any channel count) to mono at the codec's rate.

Either way ``OUT`` receives ``train/*.flac`` and ``val/*.flac`` (mono, 16-bit, ``--sample-rate``) and
``manifest.json``: one entry per file with its provenance (source, collection, licence, instruments, tempo,
drum kit, soundfont). The split is by piece, with the rule of :func:`engine.symbolic.dataset.is_val`, so a
piece and its drum copy land on the same side, and the same pieces are held out as for the symbolic model.

Variety: each rendered piece keeps the corpus's ensemble programs or (half the time) gets new random General MIDI
programs, its tempo is scaled by 0.8-1.25 (kept in 50-200 BPM), its loudness is set between -28 and -14 dB RMS,
and drum copies get a random GM drum kit (standard, room, power, electronic, TR-808, jazz, brush, orchestra).
Pieces longer than ``--max-piece-seconds`` keep a random excerpt. Multi-part pieces are drawn 3x as often as
single melodies, whose share would otherwise be 75%.

Training reads the folder with :func:`load_split`, which also accepts a plain folder of audio files (it then
splits and converts in memory), so ``segue train audio --data ~/Music`` works without this step.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import logging
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from engine.atomic import write_bytes
from engine.errors import BadInputError, EngineError

log = logging.getLogger(__name__)

DATA_TYPE = "segue-audio-data"
MANIFEST_NAME = "manifest.json"
AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg")
DEFAULT_SAMPLE_RATE = 24_000
DRUM_KITS = {
    0: "standard",
    8: "room",
    16: "power",
    24: "electronic",
    25: "tr808",
    32: "jazz",
    40: "brush",
    48: "orchestra",
}
# Pitched GM programs for re-instrumentation: everything but sound effects (120-127) and the orchestra hit.
PITCHED_PROGRAMS = [p for p in range(120) if p not in (55,)]
MULTIPART_WEIGHT = 3.0
TAIL_SECONDS = 1.0  # release after the last note

Int16Audio = npt.NDArray[np.int16]


def piece_key(rel_path: str) -> str:
    """The piece a file belongs to: its relative path without suffix and without a ``__variant`` ending."""
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", rel_path)
    return stem.split("__", 1)[0]


def is_val(rel_path: str, val_fraction: float) -> bool:
    """Held out? The rule of :func:`engine.symbolic.dataset.is_val` (sha256 of the piece key), kept here so data
    preparation needs no torch/miditok import; tests check the two agree."""
    digest = hashlib.sha256(piece_key(rel_path).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < val_fraction


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120] or "clip"


def _write_flac_atomic(path: Path, audio: npt.NDArray[np.floating], sample_rate: int) -> None:
    import soundfile as sf

    buffer = io.BytesIO()  # encoded in memory: soundfile's own writes cannot tell a full disk
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="FLAC")
    write_bytes(path, buffer.getbuffer())


def _read_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / MANIFEST_NAME
    if path.is_file():
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if data.get("type") != DATA_TYPE:
            raise BadInputError(f"{path} is not a Segue audio data manifest; choose an empty --out folder")
        return data
    return {"type": DATA_TYPE, "files": {}}


def _save_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    from engine.checkpoints import write_json_atomic

    files = manifest["files"].values()
    manifest["totals"] = {
        split: {
            "files": sum(1 for f in files if f["split"] == split),
            "seconds": round(sum(f["seconds"] for f in files if f["split"] == split), 2),
        }
        for split in ("train", "val")
    }
    write_json_atomic(out_dir / MANIFEST_NAME, manifest)


# --------------------------------------------------------------------------------------- corpus -> audio


def _rms_normalise(audio: npt.NDArray[np.float32], target_db: float) -> npt.NDArray[np.float32]:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    if rms < 1e-6:
        return audio
    gain = 10 ** (target_db / 20) / rms
    peak = float(np.max(np.abs(audio))) * gain
    gain *= min(1.0, 0.97 / peak) if peak > 0 else 1.0
    return (audio * gain).astype(np.float32)


def vary_score(score: Any, rng: random.Random) -> dict[str, Any]:
    """Re-instrument, re-tempo and pick a drum kit for a ``symusic`` score in place; returns what was chosen."""
    pitched = [t for t in score.tracks if not t.is_drum]
    if rng.random() < 0.5:
        programs = rng.sample(PITCHED_PROGRAMS, len(pitched)) if len(pitched) <= len(PITCHED_PROGRAMS) else None
        if programs is not None:
            for track, program in zip(pitched, programs, strict=True):
                track.program = program
    kit = None
    for track in score.tracks:
        if track.is_drum:
            kit = rng.choice(sorted(DRUM_KITS))
            track.program = kit
    factor = rng.uniform(0.8, 1.25)
    if len(score.tempos):  # keep the first tempo in 50..200 BPM
        first_bpm = 60_000_000 / max(1, score.tempos[0].mspq)
        factor = min(max(factor, 50.0 / first_bpm), 200.0 / first_bpm)
    for tempo in score.tempos:
        tempo.mspq = max(1, int(round(tempo.mspq / factor)))
    return {
        "programs": [int(t.program) for t in pitched],
        "drum_kit": DRUM_KITS.get(kit) if kit is not None else None,
        "tempo_factor": round(factor, 3),
        "tempo_bpm": round(60_000_000 / score.tempos[0].mspq, 1) if len(score.tempos) else None,
    }


def _choose_pieces(files: dict[str, dict[str, Any]], rng: random.Random) -> Iterator[str]:
    """Corpus files in a weighted random order (multi-part pieces drawn more often), each at most once."""
    names = sorted(files)
    weights = [MULTIPART_WEIGHT if int(files[n].get("parts", 1)) > 1 else 1.0 for n in names]
    # Efraimidis-Spirakis weighted sampling without replacement: sort by u^(1/w).
    keys = [rng.random() ** (1.0 / w) for w in weights]
    for _, name in sorted(zip(keys, names, strict=True), reverse=True):
        yield name


@dataclass(frozen=True)
class RenderOptions:
    minutes: float
    sample_rate: int = DEFAULT_SAMPLE_RATE
    val_fraction: float = 0.05
    max_piece_seconds: float = 40.0
    seed: int = 0
    soundfonts: tuple[str, ...] = ()  # paths; empty: engine.render.soundfont.find_soundfont()


# Licences of the General MIDI soundfonts Segue knows by file name, for a data manifest (and the model cards made
# from it) when a soundfont is given by path (--soundfont), which find_soundfont() reports as user-supplied.
KNOWN_SOUNDFONT_LICENCES = {
    "TimGM6mb.sf2": "GPL-2.0 (TimGM6mb by Tim Brechbill; Debian timgm6mb-soundfont, also in the pretty_midi wheel)",
    "FluidR3_GM.sf2": "MIT (FluidR3 GM by Frank Wen; Debian fluid-soundfont-gm)",
}


def _with_known_licence(font: Any) -> Any:
    licence = KNOWN_SOUNDFONT_LICENCES.get(font.path.name)
    if licence is None or not str(font.licence).startswith("unknown"):
        return font
    return dataclasses.replace(font, licence=licence)


def render_corpus(corpus_dir: Path, out_dir: Path, options: RenderOptions) -> dict[str, Any]:
    """Render corpus pieces into ``out_dir`` until it holds ``options.minutes`` of audio (resumable)."""
    from engine.render.soundfont import find_soundfont

    corpus_manifest_path = corpus_dir / "manifest.json"
    if not corpus_manifest_path.is_file():
        raise BadInputError(
            f"{corpus_dir} has no manifest.json; build the MIDI corpus first "
            f"(`python -m engine.symbolic.corpus --out {corpus_dir}`, needs `pip install 'music21>=9'`)"
        )
    corpus = json.loads(corpus_manifest_path.read_text(encoding="utf-8"))
    fonts = [find_soundfont(p) for p in options.soundfonts] if options.soundfonts else [find_soundfont()]
    fonts = [_with_known_licence(f) for f in fonts]
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(out_dir)
    if manifest["files"] and manifest.get("sample_rate") != options.sample_rate:
        raise BadInputError(
            f"{out_dir} already holds audio at {manifest.get('sample_rate')} Hz; use another --out for "
            f"{options.sample_rate} Hz"
        )
    manifest.update(_manifest_head(corpus_dir, corpus, fonts, options))
    done_sources = {f["midi"] for f in manifest["files"].values()}
    total = sum(f["seconds"] for f in manifest["files"].values())
    target = options.minutes * 60
    rng = random.Random(options.seed)
    started, last_save = time.monotonic(), time.monotonic()
    from tqdm import tqdm

    bar = tqdm(total=round(target), initial=min(round(total), round(target)), unit="s audio", disable=None)
    for rel in _choose_pieces(corpus["files"], rng):
        if total >= target:
            break
        piece_rng = random.Random(f"{options.seed}/{rel}")
        if rel in done_sources:
            continue
        piece = _render_piece(corpus_dir, rel, options, fonts, piece_rng)
        if piece is None:
            continue
        mono, font, offset, loudness_db, varied = piece
        info = corpus["files"][rel]
        split = "val" if is_val(rel, options.val_fraction) else "train"
        name = f"{split}/{_slug(Path(rel).with_suffix('').as_posix().replace('/', '_'))}.flac"
        _write_flac_atomic(out_dir / name, mono, options.sample_rate)
        seconds = mono.shape[0] / options.sample_rate
        manifest["files"][name] = {
            "split": split,
            "seconds": round(seconds, 3),
            "midi": rel,
            "source": info.get("source"),
            "collection": info.get("collection"),
            "composer": info.get("composer"),
            "title": info.get("title"),
            "licence": info.get("licence"),
            "synthetic_drums": bool(info.get("drums")),
            "soundfont": font.name,
            "excerpt_start_seconds": round(offset / options.sample_rate, 3),
            "rms_dbfs": round(loudness_db, 1),
            **varied,
        }
        total += seconds
        bar.update(round(seconds))
        if time.monotonic() - last_save > 20:
            _save_manifest(out_dir, manifest)
            last_save = time.monotonic()
    bar.close()
    _save_manifest(out_dir, manifest)
    log.info("%s: %.1f minutes of audio (%.0f s to render)", out_dir, total / 60, time.monotonic() - started)
    return manifest


def _manifest_head(
    corpus_dir: Path, corpus: dict[str, Any], fonts: list[Any], options: RenderOptions
) -> dict[str, Any]:
    """What the rendered folder's manifest says about all of it: the source, licences, soundfonts, settings."""
    return {
        "description": "Audio rendered from the music21 corpus MIDI (engine/symbolic/corpus.py) through "
        "General MIDI soundfonts by engine/audio/data.py",
        "sample_rate": options.sample_rate,
        "channels": 1,
        "source": {"kind": "music21-corpus", "corpus_dir": str(corpus_dir)},
        "licence": corpus.get("licence", ""),
        "synthetic_drums": corpus.get("synthetic_drums", ""),
        "soundfonts": [{"name": f.name, "licence": f.licence, "file": f.path.name} for f in fonts],
        "val_fraction": options.val_fraction,
        "seed": options.seed,
        "minutes_requested": options.minutes,
        "max_piece_seconds": options.max_piece_seconds,
    }


def _render_piece(
    corpus_dir: Path, rel: str, options: RenderOptions, fonts: list[Any], rng: random.Random
) -> tuple[npt.NDArray[np.float32], Any, int, float, dict[str, Any]] | None:
    """The corpus's MIDI piece ``rel``, varied (:func:`vary_score`), rendered through one of ``fonts``, cut to an
    excerpt of at most ``options.max_piece_seconds`` and brought to a random loudness: (mono audio, soundfont, the
    excerpt's first frame, its RMS in dBFS, the variations); None (logged) when it cannot be rendered or is empty."""
    from symusic import Score
    from symusic.core import ScoreSecond, ScoreTick

    from engine.render.synth import render

    try:
        score = cast(ScoreTick, Score(str(corpus_dir / rel)))
        varied = vary_score(score, rng)
        font = rng.choice(fonts)
        length = float(cast(ScoreSecond, score.to("second")).end()) + TAIL_SECONDS
        if length <= TAIL_SECONDS + 0.5:
            return None
        rendering = render(score, options.sample_rate, min(length, 590.0), font)
    except (OSError, RuntimeError, ValueError, EngineError) as e:
        log.warning("skipping %s: %s", rel, e)
        return None
    mono = rendering.mix.mean(axis=0)
    keep = round(options.max_piece_seconds * options.sample_rate)
    offset = 0
    if mono.shape[0] > keep:
        offset = rng.randrange(0, mono.shape[0] - keep)
        mono = mono[offset : offset + keep]
    loudness_db = rng.uniform(-28.0, -14.0)
    return _rms_normalise(mono, loudness_db), font, offset, loudness_db, varied


# ------------------------------------------------------------------------------------ any folder of audio


def find_audio_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def read_mono(path: Path, sample_rate: int) -> npt.NDArray[np.float32]:
    """Read any soundfile-readable file as float32 mono (channel mean) at ``sample_rate`` (soxr resampling)."""
    import soundfile as sf

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        raise BadInputError(f"{path} is not a readable audio file ({e}); give WAV, FLAC, AIFF or OGG files") from e
    mono = audio.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        log.warning("%s holds NaN/inf samples; they are replaced by silence", path)
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    return resample(mono, int(rate), sample_rate)


def resample(audio: npt.NDArray[np.float32], rate_in: int, rate_out: int) -> npt.NDArray[np.float32]:
    """``audio [samples]`` from ``rate_in`` to ``rate_out`` Hz with soxr (high quality); a copy-free no-op if equal."""
    if rate_in == rate_out or audio.size == 0:
        return audio.astype(np.float32, copy=False)
    try:
        import soxr
    except ImportError as e:
        raise EngineError("resampling needs the soxr package: `pip install soxr`") from e
    out: npt.NDArray[np.float32] = soxr.resample(audio, rate_in, rate_out, quality="HQ").astype(np.float32)
    return out


def convert_folder(src: Path, out_dir: Path, sample_rate: int, val_fraction: float = 0.05) -> dict[str, Any]:
    """Convert every audio file under ``src`` to mono FLAC at ``sample_rate`` in ``out_dir`` (split by file)."""
    files = find_audio_files(src)
    if not files:
        raise BadInputError(f"{src} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    manifest = _read_manifest(out_dir)
    manifest.update(
        {
            "description": f"Audio files from {src}, mixed to mono and resampled (soxr) by engine/audio/data.py",
            "sample_rate": sample_rate,
            "channels": 1,
            "source": {"kind": "audio-folder", "path": str(src)},
            "licence": "the licence of the source files (user-supplied)",
            "val_fraction": val_fraction,
        }
    )
    for path in files:
        rel = path.relative_to(src).as_posix()
        split = "val" if is_val(rel, val_fraction) else "train"
        name = f"{split}/{_slug(Path(rel).with_suffix('').as_posix().replace('/', '_'))}.flac"
        if name in manifest["files"]:
            continue
        try:
            mono = read_mono(path, sample_rate)
        except BadInputError as e:
            log.warning("skipping %s", e)
            continue
        if mono.size < sample_rate // 10:
            log.warning("skipping %s: shorter than 0.1 s", path)
            continue
        _write_flac_atomic(out_dir / name, mono, sample_rate)
        manifest["files"][name] = {"split": split, "seconds": round(mono.size / sample_rate, 3), "source": rel}
    _save_manifest(out_dir, manifest)
    return manifest


# --------------------------------------------------------------------------------------------- reading


def load_split(data_dir: Path, split: str, sample_rate: int, val_fraction: float = 0.05) -> list[Int16Audio]:
    """The ``split`` ("train" or "val") of a prepared folder (``manifest.json``) or of a plain audio folder, as
    int16 mono arrays at ``sample_rate`` (resampled when the files are at another rate)."""
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise BadInputError(f"--data {data_dir} is not a folder")
    manifest_path = data_dir / MANIFEST_NAME
    if manifest_path.is_file() and json.loads(manifest_path.read_text(encoding="utf-8")).get("type") == DATA_TYPE:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        paths = [data_dir / name for name, f in sorted(manifest["files"].items()) if f["split"] == split]
    else:
        paths = [
            p
            for p in find_audio_files(data_dir)
            if is_val(p.relative_to(data_dir).as_posix(), val_fraction) == (split == "val")
        ]
    clips: list[Int16Audio] = []
    for path in paths:
        try:
            mono = read_mono(path, sample_rate)
        except BadInputError as e:
            log.warning("skipping %s", e)
            continue
        clips.append(np.round(np.clip(mono, -1.0, 1.0) * 32767).astype(np.int16))
    return clips


def audio_seconds(clips: list[Int16Audio], sample_rate: int) -> float:
    return sum(c.size for c in clips) / sample_rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for train/, val/ and manifest.json")
    parser.add_argument("--minutes", type=float, default=60.0, help="minutes of corpus audio to render in all")
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"), help="MIDI corpus (engine.symbolic.corpus)")
    parser.add_argument("--audio-dir", type=Path, default=None, help="convert this folder of audio files instead")
    parser.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--max-piece-seconds", type=float, default=40.0)
    parser.add_argument("--soundfont", action="append", default=[], help="soundfont to use (repeat for several)")
    parser.add_argument("--corpus-minutes", type=float, default=30.0, help="time limit when building the corpus")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("engine.render.synth").setLevel(logging.WARNING)  # headroom notes for every piece
    if not 0.0 <= args.val_fraction < 1.0:
        parser.error("--val-fraction must be in 0..1")
    if args.audio_dir is not None:
        manifest = convert_folder(args.audio_dir, args.out, args.sample_rate, args.val_fraction)
    else:
        if not (args.corpus / "manifest.json").is_file():
            from engine.symbolic.corpus import build_corpus

            log.info(
                "no MIDI corpus in %s: building it from music21 (up to %.0f minutes)", args.corpus, args.corpus_minutes
            )
            build_corpus(args.corpus, args.corpus_minutes)
        options = RenderOptions(
            minutes=args.minutes,
            sample_rate=args.sample_rate,
            val_fraction=args.val_fraction,
            max_piece_seconds=args.max_piece_seconds,
            seed=args.seed,
            soundfonts=tuple(args.soundfont),
        )
        manifest = render_corpus(args.corpus, args.out, options)
    totals = manifest["totals"]
    print(  # noqa: T201
        f"{args.out}: train {totals['train']['files']} files / {totals['train']['seconds'] / 60:.1f} min, "
        f"val {totals['val']['files']} files / {totals['val']['seconds'] / 60:.1f} min at {args.sample_rate} Hz"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
