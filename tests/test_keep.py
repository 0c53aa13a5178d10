"""Keep best/worst: the streaming ranking against a brute-force oracle, then real recorders."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes import budget, gated
from helpers import TinyEnv, decode, flat, painted, play_episodes
from hypothesis import given, settings
from hypothesis import strategies as st

import recorder
from recorder._testing import (
    MAX_PENDING,
    Keep,
    Keeper,
    LiveFolder,
    Ranking,
    keep_module,
    keeper_held,
    keeper_remembered,
    writer_module,
)


def oracle(scores: list[float], best: int, worst: int) -> set[int]:
    """The episodes kept: the *best* highest and *worst* lowest scores, ties to the earlier."""
    order = range(len(scores))
    top = sorted(order, key=lambda i: (-scores[i], i))[:best]
    bottom = sorted(order, key=lambda i: (scores[i], i))[:worst]
    return set(top) | set(bottom)


@given(
    st.lists(st.integers(-5, 5).map(float) | st.floats(-1e6, 1e6), max_size=40),
    st.integers(0, 6),
    st.integers(0, 6),
)
def test_ranking_keeps_what_sorting_everything_keeps(
    scores: list[float], best: int, worst: int
) -> None:
    ranking = Ranking(best, worst)
    out: set[int] = set()
    for seq, score in enumerate(scores):
        gone = ranking.add(seq, score)
        assert not (set(gone) & out), "an episode left twice"
        out |= set(gone)
        # After each episode: exactly what the oracle keeps of those seen so far.
        assert ranking.kept() == oracle(scores[: seq + 1], best, worst)
        assert ranking.kept() | out == set(range(seq + 1))


FRAMES = [painted(i) for i in range(6)]


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.suffix == ".mp4"}


@settings(deadline=None, max_examples=25)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=12), st.integers(0, 3), st.integers(0, 3))
def test_recorder_keeps_the_oracles_episodes(tmp_path_factory, scores, best, worst) -> None:  # type: ignore[no-untyped-def]
    if best + worst == 0:
        return
    folder = tmp_path_factory.mktemp("keep")
    with recorder.Recorder(folder, keep={"best": best, "worst": worst}, encode_in="thread") as rec:
        for i, score in enumerate(scores):
            with rec.episode(i) as ep:
                for f in FRAMES[:3]:
                    ep.offer(lambda f=f: f)
                ep.metadata["return"] = score
    kept = oracle([float(s) for s in scores], best, worst)
    assert files(folder) == {f"rl-video-episode-{i}.mp4" for i in kept}
    assert {p.name for p in folder.glob("*.json")} == {f"rl-video-episode-{i}.json" for i in kept}
    events = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
    decisions = {e["episode_index"]: e for e in events if e.get("event") == "keep"}
    assert sorted(decisions) == list(range(len(scores)))
    deleted = {e["file"] for e in events if e.get("event") == "deleted"}
    assert deleted == {f"rl-video-episode-{i}.mp4" for i in range(len(scores))} - files(folder)


def test_step_clips_go_with_their_episode_and_the_survivors_decode(tmp_path: Path) -> None:
    with recorder.Recorder(
        tmp_path, step_trigger=lambda s: s % 2 == 0, video_length=2, keep=recorder.Keep(best=1)
    ) as rec:
        for i, score in enumerate([1.0, 9.0, 3.0]):
            with rec.episode(i, step_starting_index=10 * i) as ep:
                for f in FRAMES:
                    ep.offer(lambda f=f: f)
                ep.metadata["return"] = score
    assert files(tmp_path) == {
        "rl-video-step-10.mp4",
        "rl-video-step-12.mp4",
        "rl-video-step-14.mp4",
    }
    lengths = {f: len(decode(tmp_path / f).frames) for f in files(tmp_path)}
    assert lengths == {
        "rl-video-step-10.mp4": 2,
        "rl-video-step-12.mp4": 2,
        "rl-video-step-14.mp4": 1,
    }


def test_unscored_episodes_are_kept_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="recorder"),
        recorder.Recorder(tmp_path, keep={"best": 1}) as rec,
    ):
        for i in range(3):
            rec.submit(FRAMES, episode_index=i)  # no "return" in the metadata
        rec.submit(FRAMES, episode_index=3, metadata={"return": 5})
        rec.submit(FRAMES, episode_index=4, metadata={"return": 7})
    assert files(tmp_path) == {f"rl-video-episode-{i}.mp4" for i in (0, 1, 2, 4)}
    warnings = [r for r in caplog.records if "without a numeric" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("keep", "error"),
    [
        ({"best": 0, "worst": 0}, ValueError),
        ({"best": -1}, ValueError),
        ({"best": 1.5}, ValueError),
        ({"best": 1, "by": ""}, ValueError),
        ({"top": 3}, ValueError),
        ("best", TypeError),
    ],
)
def test_bad_keep_fails_at_the_recorder(tmp_path: Path, keep: object, error: type) -> None:
    with pytest.raises(error):
        recorder.Recorder(tmp_path, keep=keep)  # type: ignore[arg-type]


def test_keep_records_every_episode_by_default(tmp_path: Path) -> None:
    with recorder.Recorder(tmp_path, keep=Keep(best=10)) as rec:
        for i in range(6):  # capped_cubic_video_schedule would record 0, 1 and 8 only
            rec.submit(FRAMES[:2], episode_index=i, metadata={"return": i})
    assert files(tmp_path) == {f"rl-video-episode-{i}.mp4" for i in range(6)}


def test_the_wrapper_keeps_the_best_returns(tmp_path: Path) -> None:
    import gymnasium as gym

    from recorder.wrappers import RecordVideo

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    tmp_path = tmp_path / "videos"
    env = RecordVideo(env, str(tmp_path), recorder_kwargs={"keep": {"best": 2, "worst": 1}})
    returns = play_episodes(env, range(6))
    env.close()
    assert files(tmp_path) == {f"rl-video-episode-{i}.mp4" for i in oracle(returns, 2, 1)}


def test_the_vector_wrapper_refuses_keep_rather_than_ignore_it(tmp_path: Path) -> None:
    import gymnasium as gym

    from recorder.wrappers.vector import RecordVideo

    envs = gym.make_vec("CartPole-v1", num_envs=2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="keep is not supported"):
        RecordVideo(envs, str(tmp_path), recorder_kwargs={"keep": {"best": 1}})
    envs.close()


def test_cli_keep_best_and_worst(tmp_path: Path) -> None:
    from recorder.__main__ import main

    out = tmp_path / "videos"
    args = ["record", "CartPole-v1", "--episodes", "7", "--keep-best", "2", "--keep-worst", "1"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    events = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    scores = [
        e["score"]
        for e in sorted(
            (e for e in events if e.get("event") == "keep"), key=lambda e: e["episode_index"]
        )
    ]
    assert len(scores) == 7
    assert files(out) == {f"rl-video-episode-{i}.mp4" for i in oracle(scores, 2, 1)}


def test_an_episode_whose_video_was_dropped_takes_no_keep_slot(tmp_path: Path) -> None:
    fake = gated()
    with recorder.Recorder(tmp_path, keep=Keep(best=1), **budget(3, fake, "drop")) as rec:
        try:
            with rec.episode(0, metadata={"return": 1.0}) as ep:
                for k in range(2):
                    ep.append(flat(k))
            with rec.episode(1, metadata={"return": 9.0}) as ep:
                for k in range(4):  # more than the budget holds while the encoder waits
                    ep.append(flat(k))
            [dropped] = ep.handles
        finally:
            fake.gate.set()
    with pytest.raises(recorder.ClipDroppedError):
        dropped.result(timeout=10)
    # Ranked, the dropped episode would be "the best" and episode 0's video deleted: nothing.
    assert files(tmp_path) == {"rl-video-episode-0.mp4"}


def test_the_wrapper_does_not_rank_an_episode_whose_video_was_dropped(tmp_path: Path) -> None:
    from recorder.wrappers import RecordVideo

    class Rewarding(TinyEnv):
        def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
            obs, _, terminated, truncated, info = super().step(action)
            return obs, 1.0, terminated, truncated, info

    fake = gated()
    frame_bytes = 16 * 24 * 3
    rec = recorder.Recorder(
        tmp_path,
        keep=Keep(best=1),
        **budget(1, fake, "drop") | {"max_queue_bytes": 3 * frame_bytes},
    )
    inner = Rewarding()
    # No per-frame info: the budget holds 3 frames exactly.
    env = RecordVideo(
        inner, str(tmp_path), episode_trigger=lambda e: True, recorder=rec, record_info=False
    )
    try:
        for length in (2, 6):  # returns 2 and 6; the second episode's 7 frames do not fit
            inner.length = length
            env.reset()
            done = False
            while not done:
                _, _, done, _, _ = env.step(0)
        fake.gate.set()
        env.close()
    finally:
        fake.gate.set()
        rec.close()
    assert files(tmp_path) == {"rl-video-episode-0.mp4"}


# -- a byte quota ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Vid:
    """A video the quota tests save: its file, size and kind, and its episode (None: free)."""

    name: str
    size: int
    kind: str
    episode: int | None


Event = tuple[str, Any, Any]  # ("save", Vid, None) or ("end", episode, score or None)


def quota_oracle(events: list[Event], best: int, worst: int, max_bytes: int) -> set[str]:
    """The videos left: the whole policy replayed by brute force after each event (rankings by
    sorting every score so far; the quota by sorting every video on disk)."""
    ranks = best + worst > 0
    disk: list[tuple[int, Vid]] = []  # (save order, video)
    scores: dict[int, float | None] = {}  # ended episodes
    newest: dict[str, int] = {}  # kind -> save order of its last video put on disk
    out: set[int] = set()
    saves = 0
    # Scored episodes that ended before any video of theirs was saved: ranked at the first
    # (one whose clips all end without a video is never ranked).
    pending: dict[int, float] = {}
    has_video: set[int] = set()

    def rank(episode: int, score: float | None) -> None:
        nonlocal disk, out
        scores[episode] = score
        if score is not None:
            out |= {e for e, s in scores.items() if s is not None} - set(places())
            disk = [(s, v) for s, v in disk if v.episode not in out]

    def places() -> dict[int, int]:
        scored = [e for e, s in scores.items() if s is not None]
        top = sorted(scored, key=lambda e: (-scores[e], e))[:best]  # type: ignore[operator]
        bottom = sorted(scored, key=lambda e: (scores[e], e))[:worst]
        place: dict[int, int] = {}
        for ends in (top, bottom):
            for p, e in enumerate(ends):
                place[e] = min(p, place.get(e, p))
        return place

    for kind, a, b in events:
        if kind == "save":
            if ranks and a.episode in pending:
                rank(a.episode, pending.pop(a.episode))
            if ranks and a.episode in out:
                continue  # deleted at once
            disk.append((saves, a))
            newest[a.kind] = saves
            saves += 1
            has_video.add(a.episode)
        elif ranks:
            if b is None or a in has_video:
                rank(a, b)
            else:
                pending[a] = b
        total = sum(v.size for _, v in disk)
        if total <= max_bytes:
            continue
        place = places()
        candidates = []
        for seq, v in disk:
            if seq in newest.values() or (
                ranks and v.episode is not None and v.episode not in scores
            ):
                continue  # the newest of its kind; an episode not ranked yet
            if not ranks or v.episode is None or scores[v.episode] is None:
                candidates.append(((0, seq), (seq, v)))  # by age
            else:
                candidates.append(((1, -place[v.episode], -v.episode, seq), (seq, v)))
        for _, item in sorted(candidates):
            if total <= max_bytes:
                break
            disk.remove(item)
            total -= item[1].size
    return {v.name for _, v in disk}


def video_info(folder: Path, v: Vid) -> recorder.VideoInfo:
    path = folder / f"{v.name}.mp4"
    path.write_bytes(b"v" * v.size)
    path.with_suffix(".json").write_text("{}")
    return recorder.VideoInfo(
        path=path, name=v.name, kind=v.kind, index=v.episode, frames=1, fps=1.0, width=2,  # type: ignore[arg-type]
        height=2, encoded_width=2, encoded_height=2, codec="h264", size_bytes=v.size,
        encode_seconds=0.0, episode_index=v.episode,
    )  # fmt: skip


@st.composite
def quota_runs(draw: st.DrawFn) -> tuple[list[Event], int, int, int]:
    best, worst = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    events: list[Event] = []
    late: list[Event] = []
    free = 0
    for e in range(draw(st.integers(1, 9))):
        videos = [  # none: its clips were dropped, cancelled or failed
            ("episode" if j == 0 else "step", draw(st.integers(1, 900)))
            for j in range(draw(st.integers(0, 3)))
        ]
        saves: list[Event] = [("save", Vid(f"e{e}-{j}", size, k, e), None)
                              for j, (k, size) in enumerate(videos)]  # fmt: skip
        end: Event = ("end", e, draw(st.none() | st.integers(-3, 3).map(float)))
        events += late
        late = []
        order = draw(st.sampled_from(["end first", "saves first", "saves after the next"]))
        if order == "saves after the next":  # still encoding when the next episode ends
            events.append(end)
            late = saves
        else:
            events += [end, *saves] if order == "end first" else [*saves, end]
        if draw(st.booleans()):  # a clip named freely (a wrapper's start_recording)
            events.append(
                ("save", Vid(f"clip-{free}", draw(st.integers(1, 900)), "clip", None), None)
            )
            free += 1
    return events + late, best, worst, draw(st.integers(1, 3000))


@settings(deadline=None, max_examples=200)
@given(quota_runs())
def test_the_quota_deletes_what_the_oracle_deletes(
    tmp_path_factory: pytest.TempPathFactory, run: tuple[list[Event], int, int, int]
) -> None:
    events, best, worst, max_bytes = run
    folder = tmp_path_factory.mktemp("quota")
    lines: list[dict[str, Any]] = []
    keeper = Keeper(Keep(best, worst, max_bytes=max_bytes), lambda line, folder: lines.append(line))
    for kind, a, b in events:
        if kind == "save":
            keeper.saved(video_info(folder, a))
        else:
            keeper.episode_ended(a, {} if b is None else {"return": b})
    left = quota_oracle(events, best, worst, max_bytes)
    assert {p.stem for p in folder.glob("*.mp4")} == left
    assert {p.stem for p in folder.glob("*.json")} == left  # with their sidecars
    saved = {a.name for kind, a, _ in events if kind == "save"}
    deleted = [line["file"] for line in lines if line.get("event") == "deleted"]
    assert sorted(deleted) == sorted(f"{n}.mp4" for n in saved - left)  # once each
    quota_lines = [line for line in lines if "byte quota" in line.get("reason", "")]
    assert all(f"max_bytes {max_bytes}" in line["reason"] for line in quota_lines)


def test_the_recorders_quota_keeps_what_the_oracle_keeps(tmp_path: Path) -> None:
    scores = [1.0, 5.0, -2.0, 3.0, 0.0, 4.0, 2.0, 6.0]
    folder = tmp_path / "videos"
    events: list[Event] = []
    sizes = []
    quota = 5000  # about three of these videos (~1.5 kB each)
    with recorder.Recorder(folder, keep={"best": 3, "worst": 1, "max_bytes": quota}) as rec:
        for i, score in enumerate(scores):  # one at a time: each ends, then is saved
            with rec.episode(i) as ep:
                for f in FRAMES[: 2 + i % 3]:
                    ep.append(f)
                ep.metadata["return"] = score
            rec.flush()
            info = ep.handles[0].result()
            sizes.append(info.size_bytes)
            video = Vid(info.name, info.size_bytes, "episode", i)
            events += [("end", i, score), ("save", video, None)]
    left = quota_oracle(events, 3, 1, quota)
    assert files(folder) == {f"{n}.mp4" for n in left}
    lines = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
    by_quota = [e["file"] for e in lines if "byte quota" in e.get("reason", "")]
    assert by_quota, (sizes, left)  # the quota deleted some of the ranking's
    assert len(left) >= 2, (sizes, left)
    assert "rl-video-episode-7.mp4" in files(folder)  # the newest (and best)
    with recorder.Recorder(tmp_path / "quota", keep={"max_bytes": 2500}) as rec:
        for i in range(6):  # the default schedule (episodes 0 and 1): no ranking to feed
            rec.submit(FRAMES[: 2 + i], episode_index=i)
    assert files(tmp_path / "quota") <= {"rl-video-episode-0.mp4", "rl-video-episode-1.mp4"}
    assert "rl-video-episode-1.mp4" in files(tmp_path / "quota")


def test_quota_deletions_leave_the_live_gallery(tmp_path: Path) -> None:
    live = LiveFolder(tmp_path)
    offset = 0
    with recorder.Recorder(tmp_path, episode_trigger=lambda e: True, keep={"max_bytes": 1}) as rec:
        for i in range(3):
            rec.submit(FRAMES[:3], episode_index=i)
            rec.flush()
    events = live.updates(offset)["events"]
    removed = [e["remove"] for e in events if "remove" in e]
    assert removed == ["rl-video-episode-0.mp4", "rl-video-episode-1.mp4"]
    assert files(tmp_path) == {"rl-video-episode-2.mp4"}
    page = live.page()
    assert "rl-video-episode-2.mp4" in page
    assert "rl-video-episode-0.mp4" not in page


@pytest.mark.parametrize(
    ("keep", "error", "words"),
    [
        ({"max_bytes": 0}, ValueError, "max_bytes must be > 0"),
        ({"max_bytes": 1.5}, TypeError, "max_bytes must be an int"),
        ({"max_bytes": "1G"}, TypeError, "max_bytes must be an int"),
        ({"best": 0}, ValueError, "best or worst > 0, or max_bytes"),
        ({"max": 3}, ValueError, "best, worst, by, max_bytes"),
    ],
)
def test_a_bad_quota_fails_at_the_recorder(
    tmp_path: Path, keep: dict[str, Any], error: type, words: str
) -> None:
    with pytest.raises(error, match=words):
        recorder.Recorder(tmp_path, keep=keep)


def test_cli_keep_max_mb(tmp_path: Path) -> None:
    from recorder.__main__ import main

    out = tmp_path / "videos"
    args = ["record", "CartPole-v1", "--episodes", "9", "--every", "1", "--keep-max-mb", "0.01"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    saved = [e for e in lines if "event" not in e]  # one record per video, in save order
    assert len(saved) == 9
    events: list[Event] = [
        ("save", Vid(e["name"], e["size_bytes"], "episode", e["episode_index"]), None)
        for e in saved
    ]
    left = quota_oracle(events, 0, 0, int(0.01 * 2**20))
    assert files(out) == {f"{n}.mp4" for n in left}
    assert "rl-video-episode-8.mp4" in files(out)
    assert sum(e.get("event") == "deleted" for e in lines) == 9 - len(left) > 0


class Scored(TinyEnv):
    """Episodes of 3 steps whose returns are *returns*, one per episode in turn."""

    def __init__(self, returns: list[float]) -> None:
        super().__init__()
        self.returns = returns
        self.episodes = -1

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        self.episodes += 1
        return super().reset(seed=seed, options=options)

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        obs, _, _, truncated, info = super().step(action)
        return obs, self.returns[self.episodes] / 3, self.t >= 3, truncated, info


def test_wrappers_sharing_a_recorder_rank_their_own_episodes(tmp_path: Path) -> None:
    from recorder.wrappers import RecordVideo

    # Each wrapper numbers its episodes from 0: A's episode 0 is not B's.
    rec = recorder.Recorder(tmp_path / "shared", keep=Keep(best=1))
    a = RecordVideo(Scored([10.0, 50.0]), str(tmp_path / "a"), name_prefix="a", recorder=rec)
    b = RecordVideo(Scored([100.0]), str(tmp_path / "b"), name_prefix="b", recorder=rec)
    play_episodes(a, range(2))
    a.close()  # a's episode 1 ends (ranked) as its wrapper closes
    play_episodes(b, range(1))
    b.close()
    rec.close()
    assert files(tmp_path / "a") == set()
    assert files(tmp_path / "b") == {"b-episode-0.mp4"}  # the best of the three
    assert rec.stats().videos_deleted == 2
    # Each deletion is said in the manifest of the video's folder: its gallery drops the card.
    lines = [json.loads(x) for x in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    deleted = sorted(e["file"] for e in lines if e.get("event") == "deleted")
    assert deleted == ["a-episode-0.mp4", "a-episode-1.mp4"]


def test_a_video_saved_again_under_its_name_replaces_it_for_the_quota(tmp_path: Path) -> None:
    with recorder.Recorder(
        tmp_path, episode_trigger=lambda e: True, keep={"max_bytes": 2500}
    ) as rec:
        first = rec.submit(FRAMES[:4], episode_index=0)[0].result()
        second = rec.submit(FRAMES[:4], episode_index=0)[0].result()  # the same file name
    # Over the quota only if the first still counted: the newest (the only one) stays.
    assert first.size_bytes + second.size_bytes > 2500 >= second.size_bytes
    assert files(tmp_path) == {"rl-video-episode-0.mp4"}
    assert rec.stats().videos_deleted == 0


def test_an_index_ranked_again_is_a_new_episode(tmp_path: Path) -> None:
    # submit()'s default episode_index is 0: a second episode 0 is not the first one's fate.
    with recorder.Recorder(tmp_path, keep={"best": 1}) as rec:
        rec.submit(FRAMES[:2], metadata={"return": 1.0})
        rec.submit(FRAMES[:2], episode_index=1, metadata={"return": 5.0})  # 0 is out
        rec.flush()
        assert files(tmp_path) == {"rl-video-episode-1.mp4"}
        (again,) = rec.submit(FRAMES[:3], metadata={"return": 9.0})  # the best now
    assert files(tmp_path) == {"rl-video-episode-0.mp4"}
    assert again.result().frames == 3


def test_an_episode_pushed_out_by_its_own_index_does_not_delete_the_newer_video(
    tmp_path: Path,
) -> None:
    # The second episode 0 replaced the first one's file and pushed it out of the best 1: the
    # first one's deletion deleted the path, which held the best video by then.
    with recorder.Recorder(tmp_path, keep={"best": 1}) as rec:
        rec.submit(FRAMES[:2], metadata={"return": 0.0})
        rec.flush()
        (best,) = rec.submit(FRAMES[:3], metadata={"return": 10.0})
    assert files(tmp_path) == {"rl-video-episode-0.mp4"}
    assert best.result().path.exists()
    assert rec.stats().videos_deleted == 0


@pytest.mark.parametrize("max_bytes", [None, 10**9])
def test_a_deletion_decided_while_a_newer_video_takes_the_name_spares_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_bytes: int | None
) -> None:
    # Episode 1 pushes episode 0 out while a newer episode 0's video is renamed in and its
    # sidecar not yet written (its Keeper.saved() still to come): the path is the newer's.
    ranked = threading.Event()  # episode 1 ranked: a deletion decided, or none to make
    deletion = Keeper._deletion

    def noted(keeper: Keeper, held: Any, reason: str) -> Any:
        ranked.set()
        return deletion(keeper, held, reason)

    def close_episode_1() -> None:
        ep.close()
        ranked.set()

    def sidecar_then_rank(info: Any, record: Any) -> None:
        if info.metadata.get("return") == 10.0:  # under the folder's publish lock
            closer.start()  # a deletion it decides waits for the lock
            assert ranked.wait(10)
        write_sidecar(info, record)

    write_sidecar = writer_module.write_sidecar
    monkeypatch.setattr(Keeper, "_deletion", noted)
    monkeypatch.setattr(writer_module, "write_sidecar", sidecar_then_rank)
    keep = Keep(best=1, max_bytes=max_bytes)
    with recorder.Recorder(tmp_path, keep=keep, video_length=2, workers=2) as rec:
        rec.submit(FRAMES[:2], metadata={"return": 0.0})
        rec.flush()
        ep = rec.episode(1, metadata={"return": 5.0})
        ep.append(FRAMES[0])
        ep.append(FRAMES[1])  # its 2-frame clip is saved before the episode ends
        rec.flush()
        closer = threading.Thread(target=close_episode_1)
        (newer,) = rec.submit(FRAMES[:2], metadata={"return": 10.0})
        assert newer.result(timeout=30).path.exists()
        closer.join(30)
    assert files(tmp_path) == {"rl-video-episode-0.mp4"}
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == [0, 1]
    assert json.loads((tmp_path / "rl-video-episode-0.json").read_text())["metadata"] == {
        "return": 10.0
    }


def test_a_score_beyond_a_floats_range_is_kept_unranked(tmp_path: Path) -> None:
    lines: list[dict[str, Any]] = []
    keeper = Keeper(Keep(best=1), lambda line, folder: lines.append(line))
    for index, score in enumerate([10**400, 1.0]):
        keeper.episode_ended(index, {"return": score})
        keeper.saved(video_info(tmp_path, Vid(f"e{index}", 1, "episode", index)))
    assert [line["episode_index"] for line in lines if line["event"] == "keep"] == [1]
    assert Keep(max_bytes=5).describe() == "max_bytes 5"


@pytest.mark.parametrize("end", ["cancel=True", "timeout", "handle.cancel()", "failed"])
def test_an_episode_whose_clips_end_without_a_video_takes_no_keep_slot(
    tmp_path: Path, end: str
) -> None:
    # Its clip still queued when it ends, the episode is ranked only once a video is saved:
    # dropped at the close, cancelled or failed, it must not push out the video kept so far.
    fake = gated(fail_when=lambda spec: end == "failed" and "episode-1" in str(spec.path))
    fake.gate.set()
    rec = recorder.Recorder(tmp_path, keep=Keep(best=1), **budget(64, fake, "block"))
    with rec.episode(0, metadata={"return": 5.0}) as ep:
        ep.append(flat(0))
    rec.flush()
    fake.gate.clear()
    fake.fail_at = 0
    with rec.episode(1, metadata={"return": 10.0}) as ep:
        for k in range(3):
            ep.append(flat(k))
    [handle] = ep.handles
    try:
        if end == "cancel=True":
            rec.close(cancel=True)
        elif end == "timeout":
            with pytest.raises(TimeoutError):
                rec.close(timeout=0.01)
        elif end == "handle.cancel()":
            assert handle.cancel() or handle.dropped
    finally:
        fake.gate.set()
        if end == "failed":
            with pytest.raises(OSError, match="No space left"):
                rec.close()
        rec.close()
    assert handle.cancelled() or handle.exception(timeout=10) is not None
    assert files(tmp_path) == {"rl-video-episode-0.mp4"}
    assert rec.stats().videos_deleted == 0


def test_episodes_that_never_get_a_video_are_not_held_for_ever(tmp_path: Path) -> None:
    # Every clip failed (a broken encoder, a full disk): the episodes wait for a video that
    # never comes; the keeper forgets the oldest past MAX_PENDING.
    lines: list[dict[str, Any]] = []
    keeper = Keeper(Keep(best=1), lambda line, folder: lines.append(line))
    for index in range(MAX_PENDING + 50):
        keeper.episode_ended(index, {"return": float(index)})
    assert keeper_held(keeper) == (MAX_PENDING, MAX_PENDING, MAX_PENDING)
    keeper.saved(video_info(tmp_path, Vid("late", 1, "episode", MAX_PENDING + 49)))
    assert keeper_held(keeper)[2] == MAX_PENDING - 1  # ranked at its video
    assert [line["kept"] for line in lines if line["event"] == "keep"] == [True]


def test_a_long_run_remembers_a_bounded_number_of_deleted_and_unscored_episodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every episode pushed out (or ended without a score) was remembered for good: about
    # 120 bytes per episode, 120 MB per million, for a folder that keeps one video.
    monkeypatch.setattr(keep_module, "MAX_REMEMBERED", 16)
    keeper = Keeper(Keep(best=1), lambda line, folder: None)
    for index in range(100):  # each better than the last: the one before is pushed out
        keeper.saved(video_info(tmp_path, Vid(f"e{index}", 1, "episode", index)))
        keeper.episode_ended(index, {"return": float(index)})
    assert keeper_remembered(keeper)[0] == 16
    assert keeper.deleted == 99
    # The newest pushed out is still known: a late video of it is deleted as it comes.
    assert not keeper.saved(video_info(tmp_path, Vid("late", 1, "episode", 98)))
    for index in range(100, 200):
        keeper.episode_ended(index, {})
    assert keeper_remembered(keeper)[1] == 16


def test_keep_never_deletes_another_recorders_video_of_the_same_name(tmp_path: Path) -> None:
    # Rollout workers sharing a folder and counting episodes from 0: B's video took the name
    # of A's episode 0 (B has no keep policy); A's ranking then drops its own episode 0.
    frames = [painted(i) for i in range(4)]
    with recorder.Recorder(tmp_path, episode_trigger=lambda e: True, keep=Keep(best=1)) as a:
        a.submit(frames, 0, metadata={"by": "A", "return": 1.0})[0].result()
        with recorder.Recorder(tmp_path, episode_trigger=lambda e: True) as b:
            for take in range(3):  # ext4 gives a freed inode number to the next file
                b.submit(frames, 0, metadata={"by": "B", "take": take})[0].result()
        a.submit(frames, 1, metadata={"by": "A", "return": 5.0})[0].result()
    assert (tmp_path / "rl-video-episode-0.mp4").exists()
    sidecar = json.loads((tmp_path / "rl-video-episode-0.json").read_text())
    assert sidecar["metadata"]["by"] == "B"
    assert decode(tmp_path / "rl-video-episode-0.mp4").indices == [0, 1, 2, 3]
