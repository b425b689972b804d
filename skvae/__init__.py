"""skvae: variational autoencoders that behave like scikit-learn estimators."""

from ._transformer import VAETransformer

__version__ = "0.1.0"

__all__ = ["VAETransformer", "__version__"]
