"""Optional dependencies: which pip extra brings each one, imported only where a feature needs it.

The core install (``pip install ferbench``) converts, splits, trains and ranks 2-D data. Heavier
features live in extras (see pyproject.toml):

* ``3d``: open3d (depth by ray casting; without it a numpy z-buffer renders the same depth), trimesh
  and pyrender with PyOpenGL (``bu3dfe -o rgb=render``: the textured F3D mesh through OSMesa);
* ``align``: mediapipe 0.10.14 (``align=true``: eye-corner roll alignment), Python 3.11 and 3.12 only;
* ``ray``: the Ray executor of ``ferbench sweep``;
* ``analyse``: scikit-learn (the t-SNE of ``ferbench analyse``);
* ``all``: every extra above; ``test``: ``all`` plus what the test suite needs.

``require(module)`` imports a module at the place a feature needs it; when the module is missing it
raises ``MissingExtraError`` (a ``FerbenchError`` and an ``ImportError``), one line that names the
extra to install, so the command line prints that line instead of a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from .errors import FerbenchError

#: importable module -> (pip extra, what needs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "open3d": ("3d", "depth rendering by ray casting"),
    "trimesh": ("3d", "mesh handling"),
    "pyrender": ("3d", "textured rendering (bu3dfe -o rgb=render)"),
    "OpenGL": ("3d", "textured rendering (bu3dfe -o rgb=render)"),
    "mediapipe": ("align", "face alignment (-o align=true)"),
    "ray": ("ray", "the Ray executor (ferbench sweep --executor ray)"),
    "sklearn": ("analyse", "t-SNE (ferbench analyse)"),
}
#: Debian/Ubuntu packages a module needs at import time (its shared libraries)
SYSTEM_PACKAGES = {"open3d": "libusb-1.0-0", "pyrender": "libosmesa6", "OpenGL": "libosmesa6"}
#: modules whose pinned release has no build for newer Pythons: module -> (first unsupported, why)
PYTHON_LIMITS = {"mediapipe": ((3, 13), "mediapipe 0.10.14, the last release that ships its face model, has no build "
                                        "for Python 3.13 or later; use Python 3.11 or 3.12 for align=true")}


class MissingExtraError(FerbenchError, ImportError):
    """An optional dependency is missing or cannot load; the message says what to install."""


def install_hint(module: str) -> str:
    """``pip install 'ferbench[3d]'`` (or plain ``pip install module`` for one no extra brings)."""
    extra = EXTRAS.get(module.split(".")[0], (None, ""))[0]
    return f"pip install 'ferbench[{extra}]'" if extra else f"pip install {module.split('.')[0]}"


def require(module: str, extra: str | None = None, feature: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"open3d"``); if it is missing or cannot load, raise one line naming
    the extra to install (``extra`` and ``feature`` default to the table above)."""
    top = module.split(".")[0]
    known_extra, known_feature = EXTRAS.get(top, (None, None))
    extra, feature = extra or known_extra, feature or known_feature or "this feature"
    limit = PYTHON_LIMITS.get(top)
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as exc:
        if limit and sys.version_info[:2] >= limit[0]:
            raise MissingExtraError(f"{feature} is unavailable on Python {sys.version_info[0]}.{sys.version_info[1]}: "
                                    f"{limit[1]}") from None
        hint = f"pip install 'ferbench[{extra}]'" if extra else f"pip install {top}"
        if not _installed(top):
            raise MissingExtraError(f"{feature} needs {top}, which is not installed: {hint}") from None
        system = SYSTEM_PACKAGES.get(top)
        fix = f"if a shared library is missing, apt-get install {system}; else reinstall: {hint}" if system else f"reinstall: {hint}"
        raise MissingExtraError(f"{feature} needs {top}, which is installed but cannot load ({_first_line(exc)}); {fix}") from None


def _installed(top: str) -> bool:
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # a None entry in sys.modules (how tests hide a module) lands here
        return False


def available(module: str) -> bool:
    """Whether ``module`` imports (without raising)."""
    try:
        require(module)
    except MissingExtraError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
