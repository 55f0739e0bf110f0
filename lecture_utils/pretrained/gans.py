"""Recipes of notebooks 03 (the MLP GAN on digits), 04 (the DCGAN on 32 x 32 digits and the deblurring U-Nets) and
05 (the class-conditional GAN)."""
import copy

import torch
from torchvision.transforms.functional import gaussian_blur

from ..budget import get_budget
from ..data import load_mnist, load_photos, random_patches
from ..gans import (GANOptions, GaussianMixturePrior, Speed, generate, resize_images, sample_conditional, to_tanh_range,
                    to_unit_range, train_conditional_gan, train_gan, train_image_to_image)
from ..metrics import conditional_accuracy, radial_power_spectrum, sample_quality, sharpness_ratio
from ..models.conditional import ConditionalGenerator, ProjectionDiscriminator
from ..models.dcgan import DCGANDiscriminator, DCGANGenerator
from ..models.gan import MLPDiscriminator, MLPGenerator
from ..models.patchgan import PatchDiscriminator
from ..models.unet import UNet
from . import Recipe, register

DCGAN_LATENT_DIM = 100
DCGAN_FEATURES = 32                   # the DCGAN's width (ngf = ndf), the same in every budget
DCGAN_GRAD_NORM_EVERY = 8             # gradient norms measured on every 8th iteration (diagnostics only: the
                                      # weights are the same as when measuring every iteration)
DCGAN_EVAL_SEED = 2024                # the notebook's 1,000 evaluation codes
DCGAN_PRIOR_COMPONENTS = 200          # the latent prior: an equal-weight mixture of 200 Gaussians N(mu_k, I) ...
DCGAN_PRIOR_SIGMA = 1.0
DCGAN_PRIOR_SEED = 0                  # ... whose centres mu_k ~ N(0, I) come from this seed (fixed with the weights)
CONDITIONAL_LATENT_DIM = 64
CONDITIONAL_FEATURES = 32
CONDITIONAL_EVAL_SEED = 2
MLP_GAN_LATENT_DIM = 64
MLP_GAN_EVAL_SEED = 123               # notebook 03's 1,000 evaluation codes


# --------------------------------------------------------------------------- 03 MLP GAN
def build_mlp_gan():
    """Notebook 03's MLP generator (64-d noise -> 28 x 28 digits, batch norm); the shipped weights are its EMA."""
    return MLPGenerator(latent_dim=MLP_GAN_LATENT_DIM, sample_shape=(1, 28, 28), hidden=(256, 512, 1024),
                        batch_norm=True)


def train_mlp_gan(model, sizes, device):
    """Notebook 03's MLP GAN on digits: Algorithm 1 with k = 1 and the non-saturating loss, Adam (2e-4, betas
    0.5 and 0.999), an EMA of G's weights.  Returns the :class:`~lecture_utils.gans.GANRun` (history and
    snapshots of 32 fixed codes) and leaves the EMA generator in ``model``."""
    digits = load_mnist("train").subset(sizes.n_mnist)
    generator = copy.deepcopy(model)          # trained; ``model`` receives its average at the end
    discriminator = MLPDiscriminator(sample_shape=(1, 28, 28), hidden=(512, 256), dropout=0.3)
    recipe = GANOptions(batch_size=sizes.mnist_batch_size, lr_generator=2e-4, betas=(0.5, 0.999),
                        ema_decay=sizes.mnist_ema_decay, n_snapshot=32, desc="MLP GAN")
    run = train_gan(generator, discriminator, to_tanh_range(digits.images), sizes.mnist_epochs, recipe, device=device)
    model.to(device).load_state_dict(run.sampler.state_dict())
    return run


def seeded_samples(model, n: int, seed: int) -> torch.Tensor:
    """n samples in [0, 1] of a tanh generator from standard normal codes drawn with ``seed``."""
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return to_unit_range(generate(model, z))


def mlp_gan_samples(model, n: int = 1000) -> torch.Tensor:
    """n samples in [0, 1] from the notebook's fixed evaluation codes (standard normal, seed 123)."""
    return seeded_samples(model, n, MLP_GAN_EVAL_SEED)


def _evaluate_mlp_gan(model):
    q = sample_quality(mlp_gan_samples(model.cpu()))
    return {"mean_confidence": round(q["mean_confidence"], 4), "min_class_share": round(min(q["class_shares"]), 4),
            "classes_covered": int(q["classes_covered"]), "frechet_distance": round(q["frechet_distance"], 2)}


register(Recipe("mlp_gan", "03_gan_minimax", build_mlp_gan, train_mlp_gan, _evaluate_mlp_gan,
                tolerance={"mean_confidence": 0.005, "min_class_share": 0.003, "classes_covered": 0,
                           "frechet_distance": 1.0}))


# --------------------------------------------------------------------------- 04 DCGAN
def dcgan_prior():
    """The DCGAN's latent prior: a mixture of Gaussians (see :class:`~lecture_utils.gans.GaussianMixturePrior`),
    the same in every budget -- the shipped weights were trained on codes from it."""
    return GaussianMixturePrior(DCGAN_LATENT_DIM, DCGAN_PRIOR_COMPONENTS, DCGAN_PRIOR_SIGMA, seed=DCGAN_PRIOR_SEED)


def dcgan_recipe_options(sizes) -> dict:
    """The DCGAN's training options at a budget's ``sizes`` (printed by notebook 04)."""
    return dict(prior=repr(dcgan_prior()), batch_size=sizes.batch_size, lr_generator=sizes.lr,
                lr_discriminator=sizes.lr, betas=(0.5, 0.999), real_label=1.0, ema_decay=sizes.ema_decay,
                spectral_norm=False, r1_gamma=sizes.r1_gamma, r1_every=sizes.r1_every, reuse_fakes=False,
                grad_norm_every=DCGAN_GRAD_NORM_EVERY)


def _build_dcgan():
    """The raw generator and its exponential moving average (the weights notebook 04 samples from), both
    DCGAN generators for 1 x 32 x 32 digits; the average starts as a copy of the generator."""
    generator = DCGANGenerator(latent_dim=DCGAN_LATENT_DIM, channels=1, image_size=32, features=DCGAN_FEATURES)
    return torch.nn.ModuleDict({"generator": generator, "ema_generator": copy.deepcopy(generator)})


def _train_dcgan(model, sizes, device):
    """Notebook 04's DCGAN training; returns the :class:`~lecture_utils.gans.GANRun` (history and
    fixed-noise snapshots) and leaves the trained generator and its EMA in ``model``."""
    options = dcgan_recipe_options(sizes)
    prior = dcgan_prior()
    digits = load_mnist("train").subset(sizes.n_train)
    images32 = to_tanh_range(resize_images(digits.images, 32))
    discriminator = DCGANDiscriminator(channels=1, image_size=32, features=DCGAN_FEATURES,
                                       spectral_norm=options["spectral_norm"])
    recipe = GANOptions(batch_size=options["batch_size"], lr_generator=options["lr_generator"],
                        lr_discriminator=options["lr_discriminator"], betas=options["betas"],
                        real_label=options["real_label"], ema_decay=options["ema_decay"],
                        r1_gamma=options["r1_gamma"], r1_every=options["r1_every"], reuse_fakes=options["reuse_fakes"],
                        snapshot_every=max(1, sizes.dcgan_epochs // 8), desc="DCGAN",
                        speed=Speed(grad_norm_every=options["grad_norm_every"]))
    run = train_gan(model["generator"], discriminator, images32, sizes.dcgan_epochs, recipe,
                    fixed_noise=prior.sample(64, seed=DCGAN_EVAL_SEED + 1), noise=prior.to(device), device=device)
    model["ema_generator"].load_state_dict(run.sampler.state_dict())
    return run


def dcgan_eval_codes(n: int = 1000) -> torch.Tensor:
    """The notebook's fixed evaluation codes, n x 100, drawn from the DCGAN's prior with a fixed seed."""
    return dcgan_prior().sample(n, seed=DCGAN_EVAL_SEED)


def _evaluate_dcgan(model):
    q = sample_quality(to_unit_range(generate(model["ema_generator"].cpu(), dcgan_eval_codes())))
    return {"mean_confidence": round(q["mean_confidence"], 4), "min_class_share": round(min(q["class_shares"]), 4),
            "classes_covered": int(q["classes_covered"]), "frechet_distance": round(q["frechet_distance"], 2)}


register(Recipe("dcgan", "04_dcgan_patchgan", _build_dcgan, _train_dcgan, _evaluate_dcgan,
                tolerance={"mean_confidence": 0.005, "min_class_share": 0.003, "classes_covered": 0,
                           "frechet_distance": 1.0}))


# --------------------------------------------------------------------------- 05 class-conditional GAN
def _build_conditional_gan():
    """Notebook 05's conditional generator; the shipped weights are its EMA (batch norm recalibrated)."""
    return ConditionalGenerator(latent_dim=CONDITIONAL_LATENT_DIM, features=CONDITIONAL_FEATURES)


def build_conditional_discriminator():
    """Notebook 05's projection discriminator with the auxiliary classifier."""
    return ProjectionDiscriminator(features=CONDITIONAL_FEATURES, auxiliary_classifier=True)


def _train_conditional_gan(model, sizes, device):
    """Notebook 05's conditional-GAN training; returns the
    :class:`~lecture_utils.gans.ConditionalRun` and leaves the generator's exponential
    moving average (the weights the notebook samples from) in ``model``."""
    train = load_mnist("train").subset(sizes.n_train)
    generator = copy.deepcopy(model)          # trained; ``model`` receives its average at the end
    recipe = GANOptions(batch_size=sizes.batch_size, lr_generator=sizes.lr_generator,
                        lr_discriminator=sizes.lr_discriminator, classifier_weight=sizes.classifier_weight,
                        ema_decay=sizes.ema_decay, desc="conditional GAN")
    run = train_conditional_gan(generator, build_conditional_discriminator(), train.images, train.labels,
                                sizes.epochs, recipe, device=device)
    model.to(device).load_state_dict(run.sampler.state_dict())
    return run


def conditional_eval_labels(n: int = 1000) -> torch.Tensor:
    """The notebook's requested labels: 0, 1, ..., 9, 0, 1, ... (n of them)."""
    return torch.arange(n) % 10


def _evaluate_conditional_gan(model):
    requested = conditional_eval_labels()
    samples = sample_conditional(model.cpu(), requested, seed=CONDITIONAL_EVAL_SEED)
    q = sample_quality(samples)
    return {"conditional_accuracy": round(conditional_accuracy(samples, requested), 4),
            "mean_confidence": round(q["mean_confidence"], 4), "classes_covered": int(q["classes_covered"]),
            "frechet_distance": round(q["frechet_distance"], 2)}


register(Recipe("conditional_gan", "05_class_conditional", _build_conditional_gan, _train_conditional_gan,
                _evaluate_conditional_gan,
                tolerance={"conditional_accuracy": 0.005, "mean_confidence": 0.005, "classes_covered": 0,
                           "frechet_distance": 1.0}))


# --------------------------------------------------------------------------- 04 colour DCGAN
COLOUR_SAMPLE_SEED = 5                # the notebook's 500 colour samples


def colour_patches(n: int) -> torch.Tensor:
    """``n`` colour patches of 32 x 32 from the training photos at a quarter size: the offline colour data."""
    return random_patches(load_photos("train", verbose=False), n, 32, seed=3, scale=0.25)


def build_colour_dcgan():
    """Notebook 04's DCGAN with three output channels; the shipped weights are its EMA."""
    return DCGANGenerator(latent_dim=DCGAN_LATENT_DIM, channels=3, image_size=32, features=DCGAN_FEATURES)


def train_colour_dcgan(model, sizes, device, images: torch.Tensor | None = None):
    """The DCGAN of notebook 04 on colour images (default: ``sizes.n_colour`` photo patches), DCGAN's settings with
    an EMA of G; returns the :class:`~lecture_utils.gans.GANRun` and leaves the EMA generator in ``model``."""
    images = colour_patches(sizes.n_colour) if images is None else images
    generator = copy.deepcopy(model)          # trained; ``model`` receives its average at the end
    discriminator = DCGANDiscriminator(channels=3, image_size=32, features=DCGAN_FEATURES)
    run = train_gan(generator, discriminator, to_tanh_range(images), sizes.colour_epochs,
                    GANOptions(batch_size=64, ema_decay=0.999, n_snapshot=64, desc="colour DCGAN"), device=device)
    model.to(device).load_state_dict(run.sampler.state_dict())
    return run


def colour_samples(model, n: int = 500) -> torch.Tensor:
    """n samples in [0, 1] from standard normal codes (seed 5)."""
    return seeded_samples(model, n, COLOUR_SAMPLE_SEED)


def colour_statistics(images: torch.Tensor) -> torch.Tensor:
    """2 x C: the mean (row 0) and standard deviation (row 1) of each colour channel over N x C x H x W images."""
    return torch.stack([images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3))])


def colour_statistics_error(samples: torch.Tensor, real: torch.Tensor) -> float:
    """The largest difference between the per-channel means and standard deviations of samples and real images."""
    return float((colour_statistics(samples) - colour_statistics(real)).abs().max())


def _evaluate_colour_dcgan(model):
    # the standard budget's patches: what the shipped weights learned
    real = colour_patches(get_budget("standard").sizes("04_dcgan_patchgan").n_colour)
    return {"colour_statistics_error": round(colour_statistics_error(colour_samples(model.cpu()), real), 4)}


register(Recipe("colour_dcgan", "04_dcgan_patchgan", build_colour_dcgan, train_colour_dcgan, _evaluate_colour_dcgan,
                tolerance={"colour_statistics_error": 0.003}))


# --------------------------------------------------------------------------- 04 deblurring (L1 vs L1 + PatchGAN)
DEBLUR_TEST = {"n": 64, "seed": 1, "scale": 0.5}    # held-out patches of the test photos


def blur(images: torch.Tensor) -> torch.Tensor:
    """Notebook 04's degradation: a Gaussian blur with sigma 2 pixels."""
    return gaussian_blur(images, kernel_size=13, sigma=2.0)


def deblurring_patches(sizes) -> torch.Tensor:
    """The training patches: ``sizes.n_patches`` of ``sizes.patch_size`` pixels from the training photos, at half size."""
    return random_patches(load_photos("train", verbose=False), sizes.n_patches, sizes.patch_size, seed=0, scale=0.5)


def deblurring_test_patches(size: int = 48) -> torch.Tensor:
    """The 64 held-out patches of the test photos (cat, flower) every budget is scored on."""
    return random_patches(load_photos("test", verbose=False), DEBLUR_TEST["n"], size, seed=DEBLUR_TEST["seed"],
                          scale=DEBLUR_TEST["scale"])


def build_deblurring() -> torch.nn.ModuleDict:
    """Two residual U-Nets (upsampling by resize + convolution, see :class:`~lecture_utils.models.unet.UNet`) and the
    conditional PatchGAN (input and output: 6 channels, 2 layers) of notebook 04."""
    unet = UNet(in_channels=3, out_channels=3, depth=3, base_channels=16, final_activation=None, residual=True,
                upsample="resize")
    return torch.nn.ModuleDict({"l1": unet, "patchgan": copy.deepcopy(unet),
                                "discriminator": PatchDiscriminator(in_channels=6, features=32, n_layers=2)})


def train_deblurring(nets, sizes, device):
    """One U-Net learns to deblur with L1 (a warm-up); from there one copy continues with L1 only, the other with
    L1 (weight 100) + the PatchGAN's verdict (pix2pix), for the same number of epochs.  Returns the histories."""
    patches = deblurring_patches(sizes)
    blurred = blur(patches)
    warmup = train_image_to_image(nets["l1"], blurred, patches, sizes.i2i_warmup_epochs, batch_size=16, lr=1e-3,
                                  device=device, desc="U-Net, L1 warm-up")
    nets["patchgan"].load_state_dict(nets["l1"].state_dict())       # both branches start from the warm-up
    l1 = train_image_to_image(nets["l1"], blurred, patches, sizes.i2i_epochs, batch_size=16, lr=2e-4, device=device,
                              desc="L1 only")
    gan = train_image_to_image(nets["patchgan"], blurred, patches, sizes.i2i_epochs, batch_size=16, lr=2e-4,
                               discriminator=nets["discriminator"], l1_weight=100.0, device=device,
                               desc="L1 + PatchGAN")
    return {"warmup": warmup, "l1": l1, "patchgan": gan}


def spectrum_log_ratio(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """log(power of ``images`` / power of ``reference``) in each ring of radial frequency (14 rings): below 0 where
    detail is missing (blur), above 0 where power was added (noise, a grid)."""
    power, reference_power = radial_power_spectrum(images)[1], radial_power_spectrum(reference)[1]
    return power.clamp_min(1e-12).log() - reference_power.clamp_min(1e-12).log()


def _evaluate_deblurring(nets):
    test = deblurring_test_patches()
    metrics = {}
    with torch.no_grad():
        for name in ("l1", "patchgan"):
            out = nets[name].cpu().eval()(blur(test)).clamp(0, 1)
            ratio = spectrum_log_ratio(out, test)
            metrics[f"{name}_sharpness_ratio"] = round(sharpness_ratio(out, test), 4)
            metrics[f"{name}_spectral_distance"] = round(float(ratio.abs().mean()), 4)
            metrics[f"{name}_max_spectral_excess"] = round(float(ratio.max()), 4)
            metrics[f"{name}_l1_error"] = round(float((out - test).abs().mean()), 5)
    return metrics


register(Recipe("deblurring", "04_dcgan_patchgan", build_deblurring, train_deblurring, _evaluate_deblurring,
                tolerance={k: 0.01 for k in ("l1_sharpness_ratio", "l1_spectral_distance", "l1_max_spectral_excess",
                                             "patchgan_sharpness_ratio", "patchgan_spectral_distance",
                                             "patchgan_max_spectral_excess")} | {"l1_l1_error": 5e-4,
                                                                                 "patchgan_l1_error": 5e-4}))
