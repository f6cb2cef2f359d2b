"""Encoders, fusion and the registry on small synthetic batches."""
from __future__ import annotations

import pytest
import torch

from hiddenemo.errors import UserError
from hiddenemo.models import Classifier, FusionModel, build_encoder, list_encoders, load_encoder_weights
from hiddenemo.models.graph import GROUP_SIZES, PUPIL_EDGES, adjacency
from hiddenemo.models.layers import TemporalTransformer
from hiddenemo.models.registry import encoder_options
from hiddenemo.models.sequence import evenly_spread_valid

DIM = 32
SMALL = {"frame_dim": 32, "model_dim": 32, "point_hidden": 4, "depth": 1, "heads": 2}
STATS_WIDTH = 20
LENGTHS = {"pose": [9, 5, 1], "frames": [6, 2, 4], "events": [7, 7, 3], "text_input_ids": [5, 3, 1]}


def tiny_bert_config():
    from transformers import BertConfig
    return BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)


def build_small(name: str, **extra):
    options = encoder_options(name)
    kwargs = {k: v for k, v in SMALL.items() if k in options}
    if name == "text-finetune":
        kwargs["config"] = tiny_bert_config()
    return build_encoder(name, dim=DIM, **kwargs, **extra)


def make_batch(pad_to: int, seed: int = 0, lengths: dict[str, list[int]] = LENGTHS) -> dict:
    """Three videos whose valid content depends only on `seed`; padding (garbage) fills up to
    `pad_to` steps and depends on `pad_to`."""
    valid = torch.Generator().manual_seed(seed)
    junk = torch.Generator().manual_seed(1000 + pad_to)
    B = 3

    def padded(key, shape_tail, make):
        n = pad_to
        x = make((B, n, *shape_tail), junk)                               # garbage in the padding
        mask = torch.zeros(B, n, dtype=torch.bool)
        for b, length in enumerate(lengths[key]):
            x[b, :length] = make((length, *shape_tail), valid)
            mask[b, :length] = True
        return x, mask

    normal = lambda shape, g: torch.randn(shape, generator=g) * 3          # noqa: E731
    binary = lambda shape, g: (torch.rand(shape, generator=g) > 0.7).float()  # noqa: E731
    pose, pose_mask = padded("pose", (137, 8), normal)
    point_mask = padded("pose", (137,), lambda shape, g: torch.rand(shape, generator=g) > 0.2)[0]
    patch = padded("pose", (137, 16), normal)[0]                           # bound patch features (pose-patch)
    patch_mask = padded("pose", (137,), lambda shape, g: torch.rand(shape, generator=g) > 0.3)[0]
    frames, frames_mask = padded("frames", (48,), normal)
    events, events_mask = padded("events", (32,), binary)
    ids, ids_mask = padded("text_input_ids", (), lambda s, g: torch.randint(1, 50, s, generator=g).float())
    batch = {
        "pose": pose, "pose_point_mask": point_mask, "pose_mask": pose_mask,
        "pose_patch": patch, "pose_patch_mask": patch_mask,
        "frames": frames, "frames_mask": frames_mask,
        "events": events, "events_mask": events_mask,
        "text": torch.randn(B, 24, generator=torch.Generator().manual_seed(seed)),
        "text_input_ids": ids.long(), "text_attention_mask": ids_mask.long(),
    }
    for m in ("pose", "frames", "text", "events"):
        batch[f"{m}_present"] = torch.ones(B, dtype=torch.bool)
    for m in ("pose", "frames", "events"):     # one pooled vector per video (models.pooled)
        batch[f"{m}_stats"] = torch.randn(B, STATS_WIDTH, generator=torch.Generator().manual_seed(seed)) * 3 + 1
    return batch


def encoder_kwargs(name: str) -> dict:
    if name.endswith("-stats"):
        return {"in_dim": STATS_WIDTH}
    dims = {"frames": {"in_dim": 48}, "events": {"in_dim": 32}, "text-linear": {"in_dim": 24}}
    return dims.get(name.split("-")[0], {}) if name != "text-linear" else dims["text-linear"]


@pytest.mark.parametrize("name", list_encoders())
def test_every_encoder_shape_finite_and_padding_independent(name):
    torch.manual_seed(0)
    encoder = build_small(name, **encoder_kwargs(name)).eval()
    with torch.no_grad():
        short = encoder.forward_features(make_batch(pad_to=10))
        long = encoder.forward_features(make_batch(pad_to=23))
    assert short.shape == (3, DIM)
    assert torch.isfinite(short).all()
    torch.testing.assert_close(short, long, rtol=1e-4, atol=1e-5)
    other = encoder.forward_features(make_batch(pad_to=10, seed=1))
    assert not torch.allclose(short, other), "the output must depend on the valid content"


@pytest.mark.parametrize("name", [n for n in list_encoders() if n.startswith("pose-") and not n.endswith("-stats")])
def test_pose_encoders_ignore_missing_points(name):
    torch.manual_seed(0)
    encoder = build_small(name).eval()
    batch = make_batch(pad_to=10)
    missing = ~batch["pose_point_mask"].unsqueeze(-1)
    changed = dict(batch, pose=batch["pose"].masked_fill(missing, 7.0),
                   pose_patch=batch["pose_patch"].masked_fill(missing, 7.0))
    with torch.no_grad():
        torch.testing.assert_close(encoder.forward_features(batch), encoder.forward_features(changed))


@pytest.mark.parametrize("name", list_encoders())
def test_every_encoder_trains(name):
    torch.manual_seed(0)
    model = Classifier(build_small(name, **encoder_kwargs(name)), dim=DIM)
    logits = model(make_batch(pad_to=10))
    assert logits.shape == (3,)
    logits.sum().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert all(".pooler." in n for n in unused), unused                   # BERT's pooler is not used
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_chunked_attention_is_exact_full_attention():
    torch.manual_seed(0)
    full = TemporalTransformer(dim=16, depth=2, heads=2, dropout=0.0, attention="sdpa")
    chunked = TemporalTransformer(dim=16, depth=2, heads=2, dropout=0.0, attention="chunked", chunk=4)
    chunked.load_state_dict(full.state_dict())
    x = torch.randn(3, 11, 16, requires_grad=True)
    mask = torch.arange(11)[None, :] < torch.tensor([[11], [6], [1]])
    out_full = full(x, mask)
    grad_full, = torch.autograd.grad(out_full.sum(), x)
    out_chunked = chunked(x, mask)
    grad_chunked, = torch.autograd.grad(out_chunked.sum(), x)
    torch.testing.assert_close(out_full, out_chunked)
    torch.testing.assert_close(grad_full, grad_chunked)


def test_empty_sequence_gives_finite_output_and_gradients():
    layer = TemporalTransformer(dim=16, depth=1, heads=2, attention="chunked", chunk=2)
    x = torch.randn(2, 5, 16, requires_grad=True)
    mask = torch.tensor([[True] * 5, [False] * 5])
    out = layer(x, mask)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def fusion_model(fusion: str) -> FusionModel:
    torch.manual_seed(0)
    encoders = {"pose": build_small("pose-mlp"), "frames": build_small("frames-transformer", in_dim=48),
                "text": build_small("text-linear", in_dim=24)}
    return FusionModel(encoders, dim=DIM, fusion=fusion)


@pytest.mark.parametrize("fusion", ["concat", "cross-attention", "late"])
def test_fusion_with_a_missing_modality(fusion):
    model = fusion_model(fusion).eval()
    batch = make_batch(pad_to=10)
    batch["frames_present"] = torch.tensor([True, False, True])
    batch["frames_mask"][1] = False                                        # nothing stored for video 1
    logits = model(batch)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    # Video 1 is kept, and its frames (whatever they hold) no longer matter; the others' frames do.
    other = dict(batch, frames=torch.randn_like(batch["frames"]))
    other_logits = model(other)
    torch.testing.assert_close(logits[1], other_logits[1])
    assert not torch.allclose(logits[[0, 2]], other_logits[[0, 2]])
    model.train()
    model(batch).sum().backward()
    assert model.missing["frames"].grad.abs().sum() > 0                   # the missing embedding learns
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_stage1_weights_load_into_fusion_by_prefix():
    stage1 = Classifier(build_small("frames-transformer", in_dim=48), dim=DIM)
    with torch.no_grad():
        for p in stage1.parameters():
            p.add_(torch.randn_like(p))
    model = fusion_model("concat")
    load_encoder_weights(model, {"frames": stage1.state_dict()})
    for key, value in stage1.encoder.state_dict().items():
        torch.testing.assert_close(model.state_dict()[f"encoders.frames.{key}"], value)
    with pytest.raises(UserError, match="events"):
        load_encoder_weights(model, {"events": stage1.state_dict()})
    wrong = Classifier(build_small("frames-transformer", in_dim=40), dim=DIM)
    with pytest.raises(UserError, match="same options"):
        load_encoder_weights(model, {"frames": wrong.state_dict()})


def test_late_fusion_starts_as_the_average_of_the_stage1_logits():
    # Stage 2 with `late` fusion, loaded from the stage-1 models, is their logit average (their
    # ensemble) before it trains: heads and encoders both come across.
    torch.manual_seed(1)
    stage1 = {"pose": Classifier(build_small("pose-mlp"), dim=DIM),
              "frames": Classifier(build_small("frames-transformer", in_dim=48), dim=DIM),
              "text": Classifier(build_small("text-linear", in_dim=24), dim=DIM)}
    with torch.no_grad():
        for m in stage1.values():
            for p in m.parameters():
                p.add_(0.1 * torch.randn_like(p))
    model = fusion_model("late")
    load_encoder_weights(model, {m: c.state_dict() for m, c in stage1.items()})
    model.eval()
    batch = make_batch(pad_to=10)
    expected = torch.stack([c.eval()(batch) for c in stage1.values()]).mean(0)
    torch.testing.assert_close(model(batch), expected)
    assert model.head.mix.tolist() == pytest.approx([1 / 3] * 3)


def test_registry_errors_name_the_choices():
    with pytest.raises(UserError, match="pose-mlp"):
        build_encoder("pose-mpl")
    with pytest.raises(UserError, match="options are"):
        build_encoder("text-linear", in_dims=3)
    with pytest.raises(UserError, match="point_features"):
        build_small("pose-mlp", point_features=2).forward_features(make_batch(pad_to=10))


def test_graphs_are_the_openpose_skeleton():
    for group, size in GROUP_SIZES.items():
        adj = adjacency(group)
        assert adj.shape == (size, size)
        assert torch.equal(adj, adj.T) and adj.diagonal().sum() == 0
        assert (adj.sum(1) > 0).all(), f"{group} has an isolated point"
    assert adjacency("body").sum() == 2 * 24                               # BODY_25 is a tree
    assert adjacency("hands").sum() == 2 * 40                              # two hands, 20 bones each
    assert adjacency("face").sum() == 2 * (63 + len(PUPIL_EDGES))          # OpenPose's 63 face lines + the pupils
    assert adjacency("hands")[:21, 21:].sum() == 0                         # hands not joined


def test_evenly_spread_valid_picks_only_valid_steps_in_order():
    mask = torch.tensor([[True, False, True, True, False, True], [False] * 5 + [True]])
    idx = evenly_spread_valid(mask, 4)
    assert idx[0].tolist() == [0, 2, 3, 5]
    assert idx[1].tolist() == [5, 5, 5, 5]


def test_text_finetune_loads_a_local_directory_or_a_config_dict(tmp_path):
    from transformers import AutoModel
    AutoModel.from_config(tiny_bert_config()).save_pretrained(tmp_path / "tiny-bert")
    from_dir = build_encoder("text-finetune", model=str(tmp_path / "tiny-bert"), dim=DIM).eval()
    from_dict = build_encoder("text-finetune", config=dict(tiny_bert_config().to_dict(), model_type="bert"),
                              dim=DIM)
    assert from_dict.backbone.config.hidden_size == 16
    with torch.no_grad():
        assert from_dir.forward_features(make_batch(pad_to=10)).shape == (3, DIM)
    with pytest.raises(UserError, match="local directory"):
        build_encoder("text-finetune", model=str(tmp_path / "absent"))
