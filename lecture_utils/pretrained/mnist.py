"""Recipes of notebooks 01 (the 2-D autoencoder) and 02 (the VAE)."""
from ..data import load_mnist
from ..metrics import reconstruction_mse
from ..models.autoencoder import ConvAutoencoder, MLPAutoencoder
from ..models.vae import ConvVAE
from ..autoencoders import evaluate_vae, train_autoencoder, train_vae
from . import Recipe, register, seeded


# --------------------------------------------------------------------------- 01 autoencoder
def _build_autoencoder():
    return MLPAutoencoder(code_size=2)


def _train_autoencoder(model, sizes, device, epochs: int | None = None):
    """Notebook 01's training of an autoencoder on the budget's digits, for ``epochs`` epochs (default: the MLP's
    ``sizes.epochs``; the convolutional recipes pass ``sizes.conv_epochs``)."""
    train = load_mnist("train").subset(sizes.n_train)
    return train_autoencoder(model, train.images, sizes.epochs if epochs is None else epochs, sizes.batch_size,
                             device=device)


def _evaluate_autoencoder(model):
    test = load_mnist("test", verbose=False)
    return {"test_mse": round(reconstruction_mse(test.images, model.cpu().reconstruct(test.images)), 5)}


register(Recipe("autoencoder_2d", "01_autoencoders", _build_autoencoder, _train_autoencoder,
                _evaluate_autoencoder, tolerance={"test_mse": 1e-4}))


# --------------------------------------------------------------------------- 01 convolutional autoencoders
CONV_AUTOENCODER_CODES = (2, 16)   # the code sizes presenter mode shows (the smoke budget's ``code_sizes``)


def _conv_autoencoder_recipe(code_size: int) -> Recipe:
    """Notebook 01's convolutional autoencoder at one code size, trained as the notebook trains it (the same
    step as the MLP's, ``conv_epochs`` epochs): shipped because presenter mode's seconds only train it to a
    blurred average digit."""

    def build():
        return seeded(lambda: ConvAutoencoder(code_size=code_size), seed=code_size)

    def train(model, sizes, device):
        return _train_autoencoder(model, sizes, device, epochs=sizes.conv_epochs)

    return Recipe(f"conv_autoencoder_{code_size}", "01_autoencoders", build, train, _evaluate_autoencoder,
                  tolerance={"test_mse": 1e-4})


for _code_size in CONV_AUTOENCODER_CODES:
    register(_conv_autoencoder_recipe(_code_size))


# --------------------------------------------------------------------------- 02 VAE
def _build_vae():
    return ConvVAE(latent_size=20)


def _train_vae(model, sizes, device):
    train = load_mnist("train").subset(sizes.n_train)
    epochs = max(1, round(sizes.train_images / len(train)))  # training length in images seen
    return train_vae(model, train.images, epochs, sizes.batch_size, lr=sizes.lr, device=device,
                     shift_pixels=sizes.shift_pixels, lr_final=sizes.lr_final)


def _evaluate_vae(model):
    test = load_mnist("test", verbose=False)
    scores = evaluate_vae(model.cpu(), test.images)
    return {"test_negative_elbo_nats": round(scores["negative_elbo"], 3)}


register(Recipe("vae", "02_vae_elbo", _build_vae, _train_vae, _evaluate_vae,
                tolerance={"test_negative_elbo_nats": 0.02}))
