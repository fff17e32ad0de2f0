"""Controllable generation for style-based generators: projection and latent directions.

Above :mod:`gankern.models` and :mod:`gankern.metrics`, for any generator with
StyleGAN2-ADA's API (``G.mapping``, ``G.synthesis``, ``G.num_ws``, ``G.w_dim``):

* :func:`project`: find the latent of a target image (StyleGAN2-ADA's projector recipe);
* :func:`ganspace`: principal components of w or of the styles (GANSpace);
* :func:`sefa`: closed-form directions from the affine layers' weights (SeFa);
* :func:`interfacegan`: the normal of a linear boundary between latents scored by an
  attribute, optionally conditioned on others (InterFaceGAN);
* :func:`stylespace`: the style channels that move an attribute most (StyleSpace);
* :class:`Direction`, :func:`save_direction`, :func:`load_direction`,
  :func:`apply_direction`, :func:`edit_grid`: directions as small files, applied to images.
"""

from gankern.editing.attributes import DigitClassScore, InkMass, get_attribute
from gankern.editing.components import Components
from gankern.editing.directions import (
    Direction,
    apply_direction,
    edit_grid,
    edit_ws,
    load_direction,
    network_signature,
    save_direction,
)
from gankern.editing.distances import DISTANCES, resolve_distance
from gankern.editing.ganspace import ganspace
from gankern.editing.interfacegan import fit_boundary, interfacegan, project_out
from gankern.editing.layers import StyleLayer, sample_ws, style_layers, ws_for_seeds
from gankern.editing.projection import (
    Projection,
    load_projection,
    project,
    save_projection,
    with_noise,
)
from gankern.editing.sefa import affine_weights, sefa
from gankern.editing.stylespace import StyleChannels, stylespace

__all__ = [
    "DISTANCES",
    "Components",
    "DigitClassScore",
    "Direction",
    "InkMass",
    "Projection",
    "StyleChannels",
    "StyleLayer",
    "affine_weights",
    "apply_direction",
    "edit_grid",
    "edit_ws",
    "fit_boundary",
    "ganspace",
    "get_attribute",
    "interfacegan",
    "load_direction",
    "load_projection",
    "network_signature",
    "project",
    "project_out",
    "resolve_distance",
    "sample_ws",
    "save_direction",
    "save_projection",
    "sefa",
    "style_layers",
    "stylespace",
    "with_noise",
    "ws_for_seeds",
]
