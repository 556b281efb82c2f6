from .__about__ import __version__
from .check import CisKubernetesCheck

__all__ = ['__version__', 'CisKubernetesCheck']
