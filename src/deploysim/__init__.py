"""deploysim: forecast a candidate LLM's safety behaviour before release by simulating its deployment."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deploysim")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"
