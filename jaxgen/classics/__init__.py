"""Image synthesis before deep learning, and Deep Image Prior, as functions.

Not model families (nothing here goes through the trainer): plain functions
on one image, each seeded by a key.

* `efros_leung.synthesize`: texture synthesis by non-parametric sampling
  (Efros & Leung 1999).
* `patchmatch.nearest_neighbour_field`, `patchmatch.reconstruct`,
  `patchmatch.fill_hole`: randomized patch correspondence and hole filling
  (Barnes, Shechtman, Finkelstein & Goldman 2009).
* `deep_image_prior.fit`: an untrained convolutional network fitted to one
  corrupted image, for denoising and inpainting (Ulyanov, Vedaldi &
  Lempitsky 2018).
"""

from jaxgen.classics import deep_image_prior
from jaxgen.classics import efros_leung
from jaxgen.classics import patchmatch

__all__ = ['deep_image_prior', 'efros_leung', 'patchmatch']
