"""Stable person ids: the same person keeps the same id whatever id the frame's parser gave it."""

import numpy as np

from humanparse.video.tracking import PersonTracker


def scene(boxes: dict[int, tuple[int, int]], shape=(40, 60)):
    ids = np.zeros(shape, np.int64)
    for pid, (x, y) in boxes.items():
        ids[y:y + 20, x:x + 10] = pid
    return ids, [{"id": pid, "score": 0.9} for pid in boxes]


def test_ids_follow_people_across_frames_and_are_never_reused():
    tracker = PersonTracker(iou_threshold=0.3)
    # frame 0: A at x=5, B at x=40 (parser ids 1, 2)
    ids, persons = tracker.update(*scene({1: (5, 5), 2: (40, 5)}))
    a, b = ids[5, 5], ids[5, 40]
    assert {p["id"] for p in persons} == {a, b} and a != b
    # frame 1: both moved 2 px, and the parser numbered them the other way round
    ids, persons = tracker.update(*scene({2: (7, 5), 1: (42, 5)}))
    assert ids[5, 7] == a and ids[5, 42] == b
    assert {p["id"] for p in persons} == {a, b}
    # frame 2: B left, C appeared far away: C gets a new id, not B's
    ids, persons = tracker.update(*scene({1: (9, 5), 2: (30, 18)}))
    c = ids[18, 30]
    assert ids[5, 9] == a and c not in (a, b)
    # frame 3: after a reset (scene cut) everyone is new
    tracker.reset()
    ids, _ = tracker.update(*scene({1: (9, 5)}))
    assert ids[5, 9] not in (a, b, c)
