"""The per-frame info the wrappers record (``record_info=True``): the step, its reward, the
episode's return so far (as gymnasium's ``RecordEpisodeStatistics`` counts it) and the action
when it is a number or a short vector."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

from recorder._base.info import NUMBER_KINDS, Checked, item_bytes, plain_action

_BYTES = item_bytes(("step", "reward", "return", "action"))


def rewards_of(rewards: Any, num_envs: int) -> np.ndarray:
    """A vector step's *rewards*, one float per sub-environment (NaN where not one number)."""
    try:
        value = np.asarray(rewards)
        if value.size == num_envs and value.dtype.kind in NUMBER_KINDS:
            return value.astype(np.float64).reshape(num_envs)
    except (TypeError, ValueError, OverflowError):
        pass
    return np.full(num_envs, math.nan)


def step_info(step: int | None, reward: float | None, ret: float, action: Any) -> Checked:
    """The info of a frame after step *step* (None: a reset frame, without reward or action),
    as :func:`~recorder._base.info.check_info` returns it.

    Its values are plain by construction, so the training thread skips the general check.
    """
    plain = plain_action(action)
    size = _BYTES + 8 * len(plain) if type(plain) is list else _BYTES
    if reward is not None and reward - reward != 0.0:  # NaN, or an infinity: JSON has none
        reward = None
    return {
        "step": step,
        "reward": reward,
        "return": ret if ret - ret == 0.0 else None,
        "action": plain,
    }, size


class VectorReturns:
    """Each sub-environment's last step and return so far, under *mode*'s autoreset.

    As ``gymnasium.wrappers.vector.RecordEpisodeStatistics``: under next-step autoreset the
    step that resets a sub-environment starts its return at 0 (its reward is 0); under
    same-step autoreset a sub-environment that ended has already reset, so its frame is the
    next episode's first: return 0, no reward (the step's reward ends the previous episode,
    whose last frame no video has).
    """

    def __init__(self, num_envs: int, mode: AutoresetMode) -> None:
        self._mode = mode
        self._returns = np.zeros(num_envs)
        self._ended = np.zeros(num_envs, dtype=bool)  # next-step: they reset at the next step
        self._step: int | None = None  # the last step (None: a reset since)
        self._rewards = np.zeros(num_envs)
        self._no_reward = np.zeros(num_envs, dtype=bool)
        self._actions: Any = None

    def reset(self, mask: Any) -> None:
        """A reset of the sub-environments *mask* says (None: all)."""
        which = slice(None) if mask is None else mask
        self._returns[which] = 0.0
        self._ended[which] = False
        self._step = None

    def step(
        self, step: int, rewards: Any, terminations: Any, truncations: Any, actions: Any
    ) -> None:
        """The vector step *step* gave these; *actions* were taken."""
        rewards = rewards_of(rewards, len(self._returns))
        ended = np.logical_or(np.asarray(terminations), np.asarray(truncations))
        returns = self._returns
        no_reward = np.zeros_like(ended)
        if self._mode == AutoresetMode.NEXT_STEP:
            fresh = self._ended
            returns[fresh] = 0.0
            returns[~fresh] += rewards[~fresh]
            self._ended = ended
        else:
            returns += rewards
            if self._mode == AutoresetMode.SAME_STEP:
                no_reward = ended
                returns[ended] = 0.0
        self._no_reward = no_reward
        self._step, self._rewards, self._actions = step, rewards, actions

    def info(self, j: int) -> Checked:
        """The info of sub-environment *j*'s frame now."""
        ret = float(self._returns[j])
        if self._step is None:
            return step_info(None, None, ret, None)
        reward = None if self._no_reward[j] else float(self._rewards[j])
        return step_info(self._step, reward, ret, _action_of(self._actions, j, len(self._returns)))


def _action_of(actions: Any, j: int, num_envs: int) -> Any:
    """Sub-environment *j*'s action of a batch (None when the batch is not an array or list)."""
    if isinstance(actions, np.ndarray) and actions.ndim >= 1 and len(actions) == num_envs:
        return actions[j]
    if isinstance(actions, list | tuple) and len(actions) == num_envs:
        return actions[j]
    return None
