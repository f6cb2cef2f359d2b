"""Drawing: the figure at its keypoints as video frames (BGR), behind a press-conference desk in front
of a sponsor wall, with the cues that live in the pixels (flush) and without those that do not
(hands are mittens, so finger curl stays invisible)."""
from __future__ import annotations

import numpy as np

from hiddenemo.data.layout import BODY, FACE, LEFT_HAND, RIGHT_HAND
from hiddenemo.synthetic.figure import BASE_H, BASE_W
from hiddenemo.synthetic.plan import VideoPlan, envelopes


def render(plan: VideoPlan, kp: np.ndarray, width: int, height: int, rng: np.random.Generator):
    """Yield (height, width, 3) uint8 BGR frames of the figure at keypoints `kp` (base units)."""
    import cv2

    sx, sy = width / BASE_W, height / BASE_H
    env = envelopes(plan)
    subj = plan.subject
    background = _backdrop(plan, width, height, rng)
    noise_bank = [rng.normal(0, 2.0, (height, width, 3)).astype(np.int16) for _ in range(6)]
    S = 16                                           # fixed-point shift for sub-pixel drawing

    def P(p):
        return (int(round(p[0] * sx * S)), int(round(p[1] * sy * S)))

    def poly(pts):
        return (np.stack([pts[:, 0] * sx, pts[:, 1] * sy], -1) * S).round().astype(np.int32)

    lw = max(1, int(round(sx)))
    for f in range(plan.n_frames):
        img = background.copy()
        k = kp[f]
        body, face = k[BODY], k[FACE]
        hand_l, hand_r = k[LEFT_HAND], k[RIGHT_HAND]
        neck, r_sh, l_sh = body[1], body[2], body[5]
        # Torso: shirt from the shoulders down past the desk.
        torso = np.array([r_sh, l_sh, l_sh + [6, 70], r_sh + [-6, 70]])
        cv2.fillConvexPoly(img, poly(torso), subj.shirt, cv2.LINE_AA, 4)
        cv2.line(img, P(neck), P(neck - [0, 12]), subj.skin, 7 * lw, cv2.LINE_AA, 4)
        # Desk in front of the lower torso, with a microphone.
        desk_y = int(118 * sy)
        cv2.rectangle(img, (0, desk_y), (width, height), (40, 40, 45), -1)
        cv2.rectangle(img, (0, desk_y), (width, desk_y + max(1, int(2 * sy))), (90, 90, 95), -1)
        mic = (int((BASE_W / 2 + 22) * sx), desk_y)
        cv2.line(img, mic, (mic[0] - int(10 * sx), mic[1] - int(22 * sy)), (20, 20, 20), lw)
        cv2.circle(img, (mic[0] - int(10 * sx), mic[1] - int(23 * sy)), max(2, int(2.5 * sx)), (15, 15, 15), -1)
        _draw_head(img, face, body, env, f, subj, P, poly, sx, sy, lw)
        for sh, el, wr, hand in ((r_sh, body[3], body[4], hand_r), (l_sh, body[6], body[7], hand_l)):
            cv2.line(img, P(sh), P(el), subj.shirt, 6 * lw, cv2.LINE_AA, 4)
            cv2.line(img, P(el), P(wr), subj.skin, 5 * lw, cv2.LINE_AA, 4)
            # Hands drawn as mittens: palm and a fixed finger block, so finger curl stays invisible.
            d = hand[9] - hand[0]
            d = d / (np.linalg.norm(d) + 1e-6)
            tip = hand[0] + d * 11 * subj.scale
            cv2.line(img, P(hand[0]), P(tip), subj.skin, 5 * lw, cv2.LINE_AA, 4)
            cv2.line(img, P(hand[1]), P(hand[2]), subj.skin, 2 * lw, cv2.LINE_AA, 4)
        img = np.clip(img.astype(np.int16) + noise_bank[f % len(noise_bank)], 0, 255).astype(np.uint8)
        yield img


def _draw_head(img, face, body, env, f, subj, P, poly, sx, sy, lw):
    import cv2

    centre = (face[0] + face[16]) / 2
    rx = np.linalg.norm(face[16] - face[0]) / 2 * 1.05
    top = face[19:25, 1].min()
    ry = (face[8, 1] - top) * 0.78
    cy = (face[8, 1] + top) / 2 - 2
    cv2.ellipse(img, P((centre[0], cy - 3)), (int(rx * sx * 16 * 1.08), int(ry * sy * 16 * 1.12)), 0, 0, 360,
                subj.hair, -1, cv2.LINE_AA, 4)
    for ear in (body[17], body[18]):
        cv2.circle(img, P(ear), int(3 * sx * 16), subj.skin, -1, cv2.LINE_AA, 4)
    cv2.fillPoly(img, [poly(face[0:17])], subj.skin, cv2.LINE_AA, 4)
    cv2.ellipse(img, P((centre[0], face[0, 1] + 1)), (int(rx * sx * 16), int((face[0, 1] - top + 5) * sy * 16)),
                0, 180, 360, subj.skin, -1, cv2.LINE_AA, 4)
    # Flush: reddened cheeks, in the pixels only.
    flush = float(env["flush"][f])
    if flush > 0:
        overlay = img.copy()
        for cheek in (face[3] * 0.5 + face[31] * 0.5, face[13] * 0.5 + face[35] * 0.5):
            cv2.ellipse(overlay, P(cheek), (int(5 * sx * 16), int(3.5 * sy * 16)), 0, 0, 360, (70, 60, 220), -1,
                        cv2.LINE_AA, 4)
        cv2.addWeighted(overlay, 0.55 * flush, img, 1 - 0.55 * flush, 0, dst=img)
    brow = tuple(int(c * 0.5) for c in subj.hair)
    cv2.polylines(img, [poly(face[17:22]), poly(face[22:27])], False, brow, lw, cv2.LINE_AA, 4)
    for eye, pupil in ((face[36:42], face[68]), (face[42:48], face[69])):
        open_ = (eye[4, 1] - eye[2, 1]) > 0.6
        if open_:
            cv2.fillPoly(img, [poly(eye)], (235, 235, 235), cv2.LINE_AA, 4)
            cv2.circle(img, P(pupil), max(1, int(1.3 * sx * 16)), (30, 30, 30), -1, cv2.LINE_AA, 4)
        else:
            cv2.polylines(img, [poly(eye[[0, 1, 2, 3]])], False, (40, 40, 40), lw, cv2.LINE_AA, 4)
    cv2.polylines(img, [poly(face[27:31]), poly(face[31:36])], False, tuple(int(c * 0.7) for c in subj.skin),
                  lw, cv2.LINE_AA, 4)
    cv2.fillPoly(img, [poly(face[48:60])], (80, 80, 170), cv2.LINE_AA, 4)
    cv2.polylines(img, [poly(face[60:68])], True, (40, 40, 90), lw, cv2.LINE_AA, 4)


def _backdrop(plan: VideoPlan, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A sponsor wall: the video's colour with a grid of lighter logo blocks."""
    import cv2

    img = np.empty((height, width, 3), np.uint8)
    img[:] = plan.backdrop
    light = tuple(min(255, c + 60) for c in plan.backdrop)
    off = rng.integers(0, 20)
    for y in range(-int(off), height, max(8, height // 5)):
        for x in range(int(off) % 30 - 30, width, max(12, width // 5)):
            cv2.rectangle(img, (x, y), (x + width // 10, y + height // 16), light, -1)
    return img
