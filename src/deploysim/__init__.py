"""deploysim: forecast a candidate LLM's safety behaviour before release by simulating its deployment."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # looked up on first use: importing importlib.metadata costs every worker process that
    # imports a deploysim module about 50 ms
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("deploysim")
        except PackageNotFoundError:  # running from a source tree without install
            value = "0.0.0+local"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'deploysim' has no attribute {name!r}")
