"""The teacher: a weak labeller (a VLM, rules over keypoints, or a dataset's own gesture labels) that
writes, for every video, a verdict with a confidence and a reasoning text (paper, section 3.3).

Library modules here (schema, store, policy, cues, behaviour, annotations) import no API client;
the adapters `gemini` and `openai_compat` import theirs inside their functions.
"""
