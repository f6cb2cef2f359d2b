"""A seeded synthetic interview dataset in iMiGUE's real file formats.

Each video shows a drawn person seated behind a press-conference desk, seen from the front: head
with the 70 OpenPose face points, torso, arms and hands. Behavioural cues are inserted as timed
episodes whose rates depend on the hidden label (Win / Lose, about 3:1) and on the person (some
people fidget, touch their face or smile more than others whatever the result). The cues sit in
different modalities at different strengths (see `plan.CUES` and docs/synthetic.md), so that neither
one modality nor a rule-based teacher reading the keypoints is enough, while a fused model can do
better:

- `flush` (reddening cheeks) is drawn in the pixels only;
- `clench` (curling fingers) is in the hand keypoints only: hands are drawn as mittens;
- `lip_press` moves the lips by less than the keypoint noise: it is mostly in the annotations;
- `face_touch`, `arm_fold`, `gaze_away`, `smile`, `fidget` are in keypoints and pixels, and are
  what a behaviour teacher reads; some are weak, and `nod`, `shrug`, `blink`, `talk_gesture` are
  distractors with the same rate in both classes.

Outputs under `out/` (every file the iMiGUE adapter reads, in its formats):

    videos/<id>.mp4                            H.264, 25 fps
    openpose/<id>/<id>_<frame:012d>_keypoints.json   OpenPose 1.3 JSON, pixels of the drawn figure + noise
    labels_20200831.csv                        timed micro-gestures, win_or_lose blank on the target split
    splits.csv                                 video_id, subject_id, cvpr21_emotion, miga_cross_subject
    target_labels.csv                          the withheld labels of the target split (scoring only)
    truth/cues.csv                             per video, the fraction of frames each cue was active
    synthetic.json                             parameters and the cue table

Everything depends only on (seed, sizes): a video is drawn from its own generator, so an
interrupted run resumes by skipping finished videos and gives the same files.

One job per module, in the order a video is made: `plan` (subjects, labels, splits, cue episodes),
`figure` (the true keypoints), `render` (the pixels), `openpose` (the noisy OpenPose JSON), `files`
(writing it all, the tables); `separability` reads the truth back.
"""

from hiddenemo.synthetic.files import generate

__all__ = ["generate"]
