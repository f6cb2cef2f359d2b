"""hiddenemo: hidden emotion understanding from interview videos.

    import hiddenemo
    model = hiddenemo.load_model("model-dir")          # written by `hiddenemo export`
    table = model.predict(["interview.mp4"])           # video_id, label, p_<class>..., n_votes, vote_std
"""


def load_model(directory):
    """The exported model in `directory` (`hiddenemo export`), with `.predict(paths) -> DataFrame`."""
    from hiddenemo.export.apply import load_model as load
    return load(directory)
