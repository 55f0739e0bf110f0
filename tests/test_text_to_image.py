"""Notebook 09: captioned scenes, tokenizer, text encoder, conditional VAE, attribute scoring, timeline, prompt box."""
import numpy as np
import pytest
import torch

from lecture_utils import data as D
from lecture_utils import text_to_image as T
from lecture_utils.models import text_to_image as M


@pytest.fixture(scope="module")
def scenes():
    return D.make_scenes(300, seed=5, verbose=False)


# --------------------------------------------------------------------------- the data
def test_scenes_are_deterministic_from_the_seed(scenes):
    again = D.make_scenes(300, seed=5, verbose=False)
    other = D.make_scenes(300, seed=6, verbose=False)
    assert torch.equal(scenes.images, again.images) and scenes.captions == again.captions
    assert scenes.captions != other.captions
    assert scenes.images.shape == (300, 3, 32, 32) and scenes.images.dtype == torch.float32
    assert 0 <= float(scenes.images.min()) and float(scenes.images.max()) <= 1
    assert set(scenes.attributes) == set(D.SCENE_ATTRIBUTES)


def _parse(caption):
    """The caption's objects [(size or None, colour, shape)] and its place or relation, read back."""
    words = caption.split()
    objects, i = [], 0
    while i < len(words):
        if words[i] == "a":
            size = words[i + 1] if words[i + 1] in D.SCENE_SIZES else None
            j = i + 1 + (size is not None)
            objects.append((size, words[j], words[j + 1]))
            i = j + 2
        else:
            start = i
            while i < len(words) and words[i] != "a":
                i += 1
            phrase = " ".join(words[start:i])
    return objects, phrase


def test_captions_agree_with_attributes_and_pixels(scenes):
    colours, shapes = list(D.SCENE_COLOURS), list(D.SCENE_SHAPES)
    for k, caption in enumerate(scenes.captions):
        objects, phrase = _parse(caption)
        a = {name: int(v[k]) for name, v in scenes.attributes.items()}
        if len(objects) == 1:
            assert D.SCENE_PLACES[D.SCENE_LAYOUTS[a["layout"]]] == phrase
            picture = objects
        else:
            assert D.SCENE_RELATIONS[phrase] == D.SCENE_LAYOUTS[a["layout"]]
            picture = objects if phrase in ("above", "to the left of") else objects[::-1]
        for slot, (size, colour, shape) in enumerate(picture, start=1):
            assert colours[a[f"colour_{slot}"]] == colour and shapes[a[f"shape_{slot}"]] == shape
            assert a[f"size_{slot}_said"] == (size is not None)
            if size is not None:
                assert D.SCENE_SIZES[a[f"size_{slot}"]] == size
        if len(objects) == 1:  # the shape's own colour is in the picture, where the caption says
            rgb = torch.tensor(D.SCENE_COLOURS[objects[0][1]]).view(3, 1, 1)
            inside = (scenes.images[k] - rgb).abs().amax(0) < 1e-4
            ys, xs = torch.nonzero(inside, as_tuple=True)
            assert len(xs) >= 9
            place = D.SCENE_LAYOUTS[a["layout"]]
            cx, cy = float(xs.float().mean()), float(ys.float().mean())
            assert {"left": cx < 13, "right": cx > 19, "top": cy < 13, "bottom": cy > 19,
                    "middle": 12 < cx < 20 and 12 < cy < 20}[place], (caption, cx, cy)


def test_exclude_and_only_control_the_colour_shape_pairs():
    held = set(D.SCENE_HELDOUT)
    train = D.make_scenes(400, seed=1, exclude=D.SCENE_HELDOUT, verbose=False)
    test = D.make_scenes(200, seed=2, only=D.SCENE_HELDOUT, verbose=False)
    colours, shapes = list(D.SCENE_COLOURS), list(D.SCENE_SHAPES)

    def pairs(data, k):
        a = data.attributes
        return [(colours[c], shapes[s]) if c >= 0 else None
                for c, s in zip(a[f"colour_{k}"].tolist(), a[f"shape_{k}"].tolist())]

    for k in (1, 2):
        assert not held & set(pairs(train, k))
    for first, second in zip(pairs(test, 1), pairs(test, 2)):
        assert first in held or second in held
    with pytest.raises(ValueError, match="colour, shape"):
        D.make_scenes(10, exclude=[("pink", "circle")])
    with pytest.raises(ValueError, match="n must be a positive int"):
        D.make_scenes(0)


# --------------------------------------------------------------------------- tokenizer and encoder
def test_tokenizer_round_trip_padding_and_unknown_words():
    tok = M.Tokenizer()
    assert len(tok) == len(D.scene_vocabulary()) + 1
    ids = tok.encode(["A red circle, on the LEFT.", "a small blue square above a large green triangle"])
    assert ids.dtype == torch.int64 and ids.shape == (2, 9)
    assert tok.decode(ids[0]) == "a red circle on the left" and int(ids[0, 6:].abs().sum()) == 0
    assert tok.decode(ids[1]) == "a small blue square above a large green triangle"
    with pytest.raises(M.UnknownWordsError) as info:
        tok.encode("a pink dog on the left")
    message = str(info.value)
    assert "'pink', 'dog'" in message and "triangle" in message and "above" in message
    assert info.value.words == ["pink", "dog"] and isinstance(info.value, ValueError)
    assert tok.unknown_words("a huge red circle") == ["huge"]
    with pytest.raises(ValueError, match="no words"):
        tok.encode("  ,  ")


def test_text_encoder_ignores_padding_and_reads_word_order():
    torch.manual_seed(0)
    tok, encoder = M.Tokenizer(), M.TextEncoder(len(M.Tokenizer()))
    short = tok.encode("a red circle above a blue square")
    padded = tok.encode("a red circle above a blue square", length=12)
    with torch.no_grad():
        torch.testing.assert_close(encoder(short), encoder(padded))
        swapped = encoder(tok.encode("a blue square above a red circle"))
    assert not torch.allclose(encoder(short), swapped)
    with pytest.raises(ValueError, match="int64 tensor N x L"):
        encoder(short.float())


def test_cross_attention_weights_are_a_distribution_over_real_words():
    torch.manual_seed(0)
    tok, encoder = M.Tokenizer(), M.TextEncoder(len(M.Tokenizer()))
    ids = tok.encode(["a red circle on the left", "a small blue square above a large green triangle"])
    sentence, words, mask = encoder.read(ids)
    assert words.shape == (2, ids.shape[1], encoder.word_dim) and mask.tolist()[0] == [True] * 6 + [False] * 3
    attend = M.CrossAttention(channels=8, word_dim=encoder.word_dim, size=4)
    x = torch.randn(2, 8, 4, 4)
    out = attend(x, words, mask)
    weights = attend.attention                                          # N x HW x L
    assert out.shape == x.shape and weights.shape == (2, 16, ids.shape[1])
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 16))
    assert float(weights[0, :, 6:].abs().sum()) == 0.0                  # padding gets no attention
    changed = words.clone()
    changed[0, 6:] = 100.0                                              # what sits under the padding is ignored
    torch.testing.assert_close(attend(x, changed, mask), out)
    # the reference: the same attention written out for one location
    q = attend.query(x + attend.position).flatten(2)[0, :, 5]           # location 5 of scene 0
    scores = attend.key(words[0, :6]) @ q * attend.scale
    expected = x.flatten(2)[0, :, 5] + torch.softmax(scores, 0) @ attend.value(words[0, :6])
    torch.testing.assert_close(out.flatten(2)[0, :, 5], expected)


# --------------------------------------------------------------------------- the conditional VAE
def test_cvae_shapes_and_kl_against_torch_distributions(scenes):
    torch.manual_seed(0)
    tok = M.Tokenizer()
    model = M.TextToImageVAE(len(tok))
    images, ids = scenes.images[:6], tok.encode(scenes.captions[:6])
    logits, mu, logvar = model(images, ids)
    assert logits.shape == (6, 3, 32, 32) and mu.shape == logvar.shape == (6, model.z_dim)
    terms = T.negative_elbo_terms(model, images, ids)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected_kl = torch.distributions.kl_divergence(q, p).sum(1).mean()
    # the KL term does not depend on the reparameterisation noise: recompute it from the same encoder
    with torch.no_grad():
        mu2, logvar2 = model.encode(images, model.text_encoder(ids))
    torch.testing.assert_close(mu2, mu)
    torch.testing.assert_close(terms["kl"], expected_kl, rtol=1e-4, atol=1e-5)
    samples = model.sample(ids, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (6, 3, 32, 32) and 0 <= float(samples.min()) and float(samples.max()) <= 1
    with pytest.raises(ValueError, match="N x 3 x 32 x 32"):
        model(torch.rand(2, 1, 28, 28), ids[:2])


def test_cvae_training_lowers_the_negative_elbo(scenes):
    torch.manual_seed(0)
    tok = M.Tokenizer()
    model = M.TextToImageVAE(len(tok), channels=16)
    small = scenes.subset(128)
    before = T.negative_elbo_terms(model, small.images, tok.encode(small.captions))["loss"].item()
    history = T.train_text_to_image(model, small, tok, epochs=4, batch_size=32, lr=3e-3, progress=False)
    with torch.no_grad():
        after = T.negative_elbo_terms(model, small.images, tok.encode(small.captions))["loss"].item()
    assert after < 0.8 * before, (before, after)
    assert len(history) == 4 and history.records[-1]["loss"] < history.records[0]["loss"]
    images = T.generate(model, tok, ["a red circle on the left", "a blue square above a green triangle"],
                        samples_per_caption=3)
    assert images.shape == (6, 3, 32, 32)
    with pytest.raises(M.UnknownWordsError, match="'dragon'"):
        T.generate(model, tok, "a red dragon")


# --------------------------------------------------------------------------- judging attributes
def test_attribute_accuracy_counts_each_check(scenes):
    target = {k: v[:4].clone() for k, v in scenes.attributes.items()}
    assert T.attribute_accuracy(target, target)["attribute"] == 1.0
    predicted = {k: v.clone() for k, v in target.items()}
    predicted["colour_1"] = (predicted["colour_1"] + 1) % len(D.SCENE_COLOURS)      # every object 1 wrong
    result = T.attribute_accuracy(predicted, target)
    n_objects = 4 + int((target["colour_2"] >= 0).sum())
    assert result["colour"] == pytest.approx((n_objects - 4) / n_objects)
    assert result["shape"] == 1.0 and result["position"] == 1.0 and result["all_correct"] == 0.0
    checks = 4 + 2 * n_objects
    assert result["attribute"] == pytest.approx((checks - 4) / checks)


def test_accuracies_refuse_missing_heads_mismatched_counts_and_float_predictions(scenes):
    target = {k: v[:4].clone() for k, v in scenes.attributes.items()}
    predicted = {k: target[k].clone() for k in M.HEADS}
    for measure in (T.attribute_accuracy, T.object_accuracy):
        with pytest.raises(ValueError, match=r"predicted lacks the keys \['shape_2'\]"):
            measure({k: v for k, v in predicted.items() if k != "shape_2"}, target)
        with pytest.raises(ValueError, match=r"same number N >= 1 of scenes in every entry, got lengths \[3, 4\]"):
            measure({**predicted, "layout": predicted["layout"][:3]}, target)
        with pytest.raises(ValueError, match=r"predicted\['colour_1'\] must be a 1-D integer tensor .* got torch.float32"):
            measure({**predicted, "colour_1": predicted["colour_1"].float()}, target)
        with pytest.raises(ValueError, match="got lengths \\[0\\]"):
            measure({k: v[:0] for k, v in predicted.items()}, {k: v[:0] for k, v in target.items()})


def test_generate_refuses_a_sample_count_below_one():
    tokenizer = M.Tokenizer()
    model = M.TextToImageVAE(len(tokenizer), channels=8)
    with pytest.raises(ValueError, match="samples_per_caption must be a positive int, got 0"):
        T.generate(model, tokenizer, "a red circle", samples_per_caption=0)


def test_blur_and_noise_keeps_range_and_mean():
    images = D.make_scenes(16, seed=0, verbose=False).images
    out = T.blur_and_noise(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    assert abs(float(out.mean() - images.mean())) < 0.02
    sharp = T.blur_and_noise(images, torch.Generator().manual_seed(0), max_sigma=0.0, max_noise=0.0)
    torch.testing.assert_close(sharp, images, atol=1e-5, rtol=0)


def test_shipped_scene_classifier_reads_real_scenes():
    model = T.load_scene_classifier()
    scenes = D.make_scenes(300, seed=12345, verbose=False)
    heldout = D.make_scenes(200, seed=54321, only=D.SCENE_HELDOUT, verbose=False)
    assert T.attribute_accuracy(model.predict(scenes.images), scenes.attributes)["attribute"] > 0.97
    assert T.attribute_accuracy(model.predict(heldout.images), heldout.attributes)["attribute"] > 0.97
    noise = torch.rand(200, 3, 32, 32)
    assert T.attribute_accuracy(model.predict(noise), heldout.attributes)["attribute"] < 0.6


# --------------------------------------------------------------------------- the field and the prompt box
def test_timeline_holds_three_families_with_reported_counts():
    rows = T.TEXT_TO_IMAGE_TIMELINE
    assert {r[3] for r in rows} == set(T.TIMELINE_COLOURS)
    assert all(1e6 < r[2] < 1e11 and 2016 < r[1] < 2024 for r in rows)
    assert dict((r[0], r[2]) for r in rows)["DALL-E"] == 12e9 and dict((r[0], r[2]) for r in rows)["Parti"] == 20e9
    fig = T.timeline_figure(ours=("ours", 480_000))
    points = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert points == len(rows)
    assert "2309.00810" in T.TIMELINE_SOURCE


def test_prompt_box_draws_examples_and_names_unknown_words():
    from lecture_utils import widgets

    tok = M.Tokenizer()

    def generate(caption, n):
        tok.encode(caption)                      # raises for unknown words, like the real model
        return torch.rand(n, 3, 32, 32)

    box = widgets.prompt_box(generate, ["a red circle on the left", "a purple unicorn"], samples_per_caption=4,
                             show=False)
    assert list(box.messages) == ["a purple unicorn"]
    assert "'unicorn'" in box.messages["a purple unicorn"] and "triangle" in box.messages["a purple unicorn"]
    assert len(box.static_figure().axes) == 1
    assert box.current_images().shape == (4, 3, 32, 32)
    box.text.value = "a green dog"               # the box shows the message, it does not raise
    assert box.current_images() is None and "dog" in box.message.value
    box.text.value = "a blue square at the top"
    assert box.current_images().shape == (4, 3, 32, 32) and box.message.value == ""


def test_object_accuracy_counts_colour_and_shape_together_on_the_chosen_pairs():
    scenes = D.make_scenes(40, seed=5, only=D.SCENE_HELDOUT)
    target = scenes.attributes
    perfect = {k: v.clone() for k, v in target.items()}
    assert T.object_accuracy(perfect, target, pairs=D.SCENE_HELDOUT) == 1.0
    assert T.object_accuracy(perfect, target) == 1.0
    # wrong shape on every held-out object, colour still right: colour and shape *together* fail
    wrong = {k: v.clone() for k, v in target.items()}
    colours, shapes = list(D.SCENE_COLOURS), list(D.SCENE_SHAPES)
    held = {(colours.index(c), shapes.index(s)) for c, s in D.SCENE_HELDOUT}
    n_held, n_objects = 0, 0
    for k in (1, 2):
        for i in range(len(scenes)):
            c, s = int(target[f"colour_{k}"][i]), int(target[f"shape_{k}"][i])
            n_objects += c >= 0
            if (c, s) in held:
                wrong[f"shape_{k}"][i] = (s + 1) % len(shapes)
                n_held += 1
    assert n_held > 0
    assert T.object_accuracy(wrong, target, pairs=D.SCENE_HELDOUT) == 0.0
    assert T.object_accuracy(wrong, target) == pytest.approx(1 - n_held / n_objects)
    with pytest.raises(ValueError, match="pairs must be"):
        T.object_accuracy(perfect, target, pairs=[("pink", "circle")])
    seen_only = D.make_scenes(10, seed=6, exclude=D.SCENE_HELDOUT).attributes
    with pytest.raises(ValueError, match="no object"):
        T.object_accuracy(seen_only, seen_only, pairs=D.SCENE_HELDOUT)
