"""Interactive widgets (ipywidgets), one module per notebook topic, all in one style (see :mod:`.base`):
a widget class built and displayed by a function of the same name, with a static figure for front ends
that cannot run widgets.

* :mod:`.latent` -- :func:`interpolation_explorer`, :func:`latent_sliders`, :func:`interpolate`,
  :func:`code_of`, :func:`endpoint_choices` (notebooks 02, 04, 05)
* :mod:`.conditional` -- :func:`class_explorer` (notebook 05)
* :mod:`.editing` -- :func:`editing_explorer` (notebook 07)
* :mod:`.style` -- :func:`style_weight_slider` (notebook 08)
* :mod:`.prompt` -- :func:`prompt_box` (notebook 09)
* :mod:`.diffusion` -- :func:`diffusion_path_slider`, :func:`guidance_explorer` (notebook 10)
"""
from .conditional import ClassConditionalExplorer, class_explorer
from .diffusion import DiffusionPathSlider, GuidanceExplorer, diffusion_path_slider, guidance_explorer
from .editing import EDITING_CHOICES, EditingExplorer, editing_explorer
from .latent import (INTERPOLATION_MODES, InterpolationExplorer, LatentSliders, code_of, endpoint_choices, interpolate,
                     interpolation_explorer, latent_sliders)
from .prompt import PromptBox, prompt_box
from .style import StyleWeightExplorer, style_weight_slider

__all__ = [
    "ClassConditionalExplorer", "class_explorer", "DiffusionPathSlider", "GuidanceExplorer", "diffusion_path_slider",
    "guidance_explorer", "EDITING_CHOICES", "EditingExplorer", "editing_explorer", "INTERPOLATION_MODES",
    "InterpolationExplorer", "LatentSliders", "code_of", "endpoint_choices", "interpolate", "interpolation_explorer",
    "latent_sliders", "PromptBox", "prompt_box", "StyleWeightExplorer", "style_weight_slider",
]
