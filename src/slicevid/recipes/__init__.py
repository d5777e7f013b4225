"""Recipes: every setting of a two-stage experiment in one object, and the one runner that runs it.

[`viptt_reproduction()`][slicevid.recipes.viptt_reproduction] is the authors' code, setting by
setting (the docs' reproduction page lists each one with what the paper says);
where the paper and the code disagree it follows the code, because the paper's numbers came from
the code. [`slicevid_recipe()`][slicevid.recipes.slicevid_recipe] keeps the paper's recipe but
makes slicevid's choices where they are better or more general (documented beside each);
`demo_recipe()` is ``slicevid demo``'s.
"""

from .crossval import CrossValidation, cross_validate
from .named import RECIPES, demo_recipe, named_recipe, slicevid_recipe, viptt_reproduction
from .recipe import PAPER_CONFIGURATIONS, Configuration, CTLabels, Recipe
from .runner import RecipeResult, clip_splits, held_out_scans, run_recipe, scan_splits, stage_folder
from .stage import ModelStart, from_scratch_advice, run_finetuning, run_pretraining

__all__ = [
    "PAPER_CONFIGURATIONS",
    "RECIPES",
    "CTLabels",
    "Configuration",
    "CrossValidation",
    "ModelStart",
    "Recipe",
    "RecipeResult",
    "clip_splits",
    "cross_validate",
    "demo_recipe",
    "from_scratch_advice",
    "held_out_scans",
    "named_recipe",
    "run_finetuning",
    "run_pretraining",
    "run_recipe",
    "scan_splits",
    "slicevid_recipe",
    "stage_folder",
    "viptt_reproduction",
]
