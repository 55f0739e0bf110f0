"""Recipe of notebook 09: the text-conditional VAE."""
from ..data import SCENE_HELDOUT, make_scenes
from ..models.text_to_image import TextToImageVAE, Tokenizer
from ..text_to_image import attribute_accuracy, generate, load_scene_classifier, train_text_to_image
from . import Recipe, register


# --------------------------------------------------------------------------- 09 text-to-image
def _build_text_to_image():
    return TextToImageVAE(len(Tokenizer()))


def _train_text_to_image(model, sizes, device):
    train = make_scenes(sizes.n_train, seed=0, exclude=SCENE_HELDOUT)
    return train_text_to_image(model, train, Tokenizer(), epochs=sizes.epochs, batch_size=sizes.batch_size,
                               device=device)


def _evaluate_text_to_image(model):
    heldout = make_scenes(600, seed=2, only=SCENE_HELDOUT, verbose=False)
    images = generate(model.cpu(), Tokenizer(), heldout.captions, seed=1)
    scores = attribute_accuracy(load_scene_classifier().predict(images), heldout.attributes)
    return {"heldout_attribute_accuracy": round(scores["attribute"], 4)}


register(Recipe("text_to_image_cvae", "09_text_to_image", _build_text_to_image, _train_text_to_image,
                _evaluate_text_to_image, tolerance={"heldout_attribute_accuracy": 0.01}))
