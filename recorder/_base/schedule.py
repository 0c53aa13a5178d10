"""gymnasium's default recording schedule (no moviepy import needed)."""

from __future__ import annotations


def capped_cubic_video_schedule(episode_id: int) -> bool:
    r"""The default episode trigger, as gymnasium's.

    Records episodes :math:`\{0, 1, 8, 27, ..., k^3, ..., 729, 1000, 2000, 3000, ...\}`.

    Args:
        episode_id: The episode number.

    Returns:
        Whether to record this episode.
    """
    if episode_id < 1000:
        return bool(round(episode_id ** (1.0 / 3)) ** 3 == episode_id)
    return episode_id % 1000 == 0
