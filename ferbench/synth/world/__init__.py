"""The synthetic expression world: procedural faces whose expressions are made of FACS action units.

Everything is in millimetres in a head frame with y up and the face looking toward +z (the
BU-3DFE/Bosphorus convention), the head centre at the origin.

* **Subjects** (``make_subjects``) draw their identity from a seed: head size and jaw taper, eye
  spacing/size/aperture, brow height and thickness, nose length/width, mouth width and lips, chin,
  skin tone, hair, iris colour, stubble and how strongly they express. Identity is a nuisance.
* **Expressions** are AU intensities on the FACS 0–5 scale (A = 1 … E = 5). ``EMOTION_AUS`` holds
  the prototype of each canonical emotion; level ``k`` (1..4, BU-3DFE's intensity levels) sets each
  prototype AU to ``weight × (k + 1) × subject gain`` (capped at 5). Contempt's AU12+14 act on one
  side only (``sides``: ``"R"`` = the subject's right = image left). The face responds to
  ``(intensity / 5) ** RESPONSE``, so that weak expressions stay visible in small images.
  ``label_from_aus`` inverts the prototypes: labels and AUs always agree.
* **The face mesh** is a fixed-topology grid (the same vertex ids for every subject, so landmarks
  are vertex ids): a flattened ellipsoid carrying eye sockets, brow ridge, nose, cheeks, lips and
  chin. The grid is cut open along the eye and mouth lines; behind the eye slits sit eyeball caps
  and behind the mouth slit a cavity with teeth, so parting the lids or lips reveals them. Each AU is
  a displacement field (a linear blend shape per side); the jaw drop is a rotation about the jaw
  hinge. Texture is evaluated per pixel in the rest coordinates of the surface, so brows, lips and
  lids move with the skin; AU-driven wrinkles (forehead, glabella, nose, nasolabial folds, crow's
  feet, dimples) darken the skin as in wrinkle maps.
* **Rendering** goes through ``ferbench.geometry.render`` (orthographic depth, ``FOV_MM`` wide at
  scale 1) and ``ferbench.synth.shading`` (Lambertian RGB from the same pixel-centre rays), so RGB
  and depth are registered. Head pose, light, scale, framing shift, background and occluders
  (hand, hair strand, sunglasses) vary. ``LANDMARKS`` names 26 mesh vertices (brows, eye
  corners and lids, nose, mouth corners and lips, chin), returned in 3-D and in image pixels.

``sample_world`` and ``sequence`` are deterministic per seed: each sample's random stream is
keyed on (seed, subject id, label, level, repeat), never on iteration order. ``learnability_probe``
reports how well a tiny linear/MLP model learns the labels from pixels across held-out subjects.

Submodules, each importing only those listed before it: ``aus`` (AUs, prototypes, activations),
``subjects`` (identities), ``topology`` (mesh layout, materials, landmarks), ``geometry`` (rest
shape and AU displacement basis), ``texture`` (albedo and wrinkles), ``occluders``, ``face``
(``render_face``, ``FaceSample``), ``sampling`` (``sample_world``, ``sequence``, ``random_light``)
and ``probe`` (``learnability_probe``). This package re-exports their public names.
"""

from ..shading import Light
from .aus import (
    AU_NAMES,
    AUS,
    EMOTION_AUS,
    LEVELS,
    RESPONSE,
    SIDES,
    UNILATERAL,
    au_vector,
    label_from_aus,
    level_of,
    prototype,
)
from .face import FOV_MM, FaceSample, render_face
from .occluders import OCCLUSIONS
from .probe import learnability_probe
from .sampling import random_light, sample_world, sequence
from .subjects import Subject, make_subjects
from .topology import (
    C_EYE,
    C_EYE_IN,
    C_EYE_OUT,
    C_MOUTH,
    EYE,
    LANDMARKS,
    MOUTH,
    NC,
    NOSE_TIP,
    NR,
    OCCLUDER,
    R_BROW,
    R_CHIN,
    R_EYE,
    R_MOUTH,
    R_NOSE,
    SKIN,
)

__all__ = [
    "AU_NAMES",
    "AUS",
    "C_EYE",
    "C_EYE_IN",
    "C_EYE_OUT",
    "C_MOUTH",
    "EMOTION_AUS",
    "EYE",
    "FOV_MM",
    "FaceSample",
    "LANDMARKS",
    "LEVELS",
    "Light",
    "MOUTH",
    "NC",
    "NOSE_TIP",
    "NR",
    "OCCLUDER",
    "OCCLUSIONS",
    "RESPONSE",
    "R_BROW",
    "R_CHIN",
    "R_EYE",
    "R_MOUTH",
    "R_NOSE",
    "SIDES",
    "SKIN",
    "Subject",
    "UNILATERAL",
    "au_vector",
    "label_from_aus",
    "learnability_probe",
    "level_of",
    "make_subjects",
    "prototype",
    "random_light",
    "render_face",
    "sample_world",
    "sequence",
]
