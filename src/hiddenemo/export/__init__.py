"""A trained model that travels without its workspace: `export` writes a model directory from a run
(bundle, recipe, card), `apply` runs it on new videos (also as `hiddenemo.load_model`)."""
