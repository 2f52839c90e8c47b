"""Pure sample-quality metrics on features, class predictions and points.

NumPy on the host, float64, no models and no files: the caller brings the
features (`frechet`), a classifier's log-probabilities or predicted classes
(`classes`), 2-D samples and the modes of their mixture (`modes`), or two
samples of points (`twosample`).
`jaxgen.quality` computes them for a trained run. `ood` holds the
outlier-detection and calibration metrics of what a density is used for
(AUROC, AUPR, FPR at 95% TPR, typicality, input complexity, ECE).
"""

from jaxgen.metrics.classes import inception_style_score
from jaxgen.metrics.classes import label_distribution
from jaxgen.metrics.frechet import frechet_distance
from jaxgen.metrics.frechet import frechet_distance_from_statistics
from jaxgen.metrics.frechet import gaussian_statistics
from jaxgen.metrics.modes import toy_mode_coverage
from jaxgen.metrics.twosample import energy_distance
from jaxgen.metrics import ood
