"""Reading a ``.keras`` file: a damaged archive is one DataError naming the file.

A ``.keras`` file is a zip archive (``metadata.json``, ``config.json``,
``model.weights.h5``). Keras reports a truncated one as "File not found" and
lets ``zipfile.BadZipFile`` (a flipped bit: "Bad CRC-32") escape, so the
archive is checked first, every member against its CRC.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from benchmark.errors import DataError

#: What Keras raises for a file that is an archive but not a model it can build.
LOAD_ERRORS = (OSError, ValueError, TypeError, KeyError, IndexError, EOFError,
               zipfile.BadZipFile, zlib.error)


def check_keras_archive(path: str | Path) -> None:
    """DataError unless ``path`` is a complete zip archive whose members pass their CRC.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "m.keras")
    ...     _ = open(p, "wb").write(b"PK\\x03\\x04 cut")
    ...     try:
    ...         check_keras_archive(p)
    ...     except DataError as e:
    ...         print(str(e).replace(d, "D").split(" (")[0])
    D/m.keras: not a readable .keras file
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such .keras file")
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path}: not a readable .keras file (a zip archive; truncated or "
                        f"damaged?): {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                        ) from None
    if bad is not None:
        raise DataError(f"{path}: damaged .keras file: its member {bad} fails the CRC check")


def load_keras(path: str | Path):
    """``keras.models.load_model(path, compile=False)``, any failure one DataError."""
    check_keras_archive(path)
    import keras
    try:
        return keras.models.load_model(path, compile=False)
    except LOAD_ERRORS as e:
        first = (str(e).splitlines() or [""])[0][:200]
        raise DataError(f"cannot load {path}: {type(e).__name__}: {first}") from None
