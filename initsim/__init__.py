"""initsim: what does a weight initialization do to signals and gradients in a deep net?"""

from initsim._version import __version__

__all__ = ["__version__"]
