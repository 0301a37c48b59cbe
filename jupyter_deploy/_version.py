"""The package version (npm's labextension version is kept equal by the build)."""

__version__ = "0.1.0"
