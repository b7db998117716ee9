"""The benchmark's vocabulary: subtasks, reporting groups and dimensions.

This is the one place these names are spelled; every other module (loading,
metrics, reports, CLI) reads them from here.
"""

from __future__ import annotations

from typing import Final

#: Judged dimensions, in the paper's column order (PF / C / O).
DIMENSIONS: Final = ("prompt_following", "consistency", "overall")

#: Every sub-score a pointwise judge returns (the dimensions plus perceptual quality).
SUBSCORES: Final = ("prompt_following", "consistency", "perceptual_quality", "overall")

#: Column headers the paper uses.
DIMENSION_ABBREV: Final = {"prompt_following": "PF", "consistency": "C", "overall": "O"}

#: Reporting groups and their subtasks, exact spelling (mixed '-' and '_' as upstream).
GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "subject": ("subject-add", "subject-remove", "subject-replace"),
    "appearance": ("color_alter", "material_alter", "style_change", "tone_transfer"),
    "scene": ("background_change", "extract"),
    "advanced": ("ps_human", "text_change", "motion_change", "compose"),
}

#: The 13 subtasks, in the order of the groups above.
SUBTASKS: Final = tuple(s for members in GROUPS.values() for s in members)

#: Subtask -> its group.
SUBTASK_GROUP: Final = {s: g for g, members in GROUPS.items() for s in members}

#: Name of the block that averages all 13 subtasks.
OVERALL_BLOCK: Final = "overall"

#: Blocks of the paper's table, in its order.
BLOCKS: Final = (OVERALL_BLOCK, *GROUPS)
