"""skvae: variational autoencoders that behave like scikit-learn estimators."""

from ._imputer import VAEImputer
from ._outlier import VAEOutlierDetector
from ._persistence import ModelFileError, load, save
from ._transformer import VAETransformer

__version__ = "0.1.0"

__all__ = [
    "ModelFileError",
    "VAEImputer",
    "VAEOutlierDetector",
    "VAETransformer",
    "__version__",
    "load",
    "save",
]
