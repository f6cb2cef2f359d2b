"""Extraction: decoding, person box, keypoints (OpenPose 137 layout), frame embeddings, the per-video job."""
