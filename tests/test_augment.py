"""Tests for tinygrad_rep.data.augment: each augmentation's parameters and layout, seeding,
explicit-loop references for the geometric ones, and the SimCLR view pipeline."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_rep.data import augment as A

from helpers import capped

FUNCS = [A.random_resized_crop, A.random_shift, A.random_flip, A.gaussian_noise, A.random_erasing,
         A.random_intensity]


def _images(n=6, h=7, w=9, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((n, h, w)).astype(dtype)


# ---------------------------------------------------------------------------------- layout, seeds

@pytest.mark.parametrize("fn", FUNCS)
def test_layout_dtype_range_and_input_untouched(fn):
    x = _images()
    before = x.copy()
    out = fn(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(x, before)
    flat = fn(x.reshape(6, 63), np.random.default_rng(0), shape=(7, 9))
    assert flat.shape == (6, 63)
    np.testing.assert_array_equal(flat.reshape(x.shape), out)  # same draws, same views
    assert fn(x.astype(np.float64), np.random.default_rng(0)).dtype == np.float64


@pytest.mark.parametrize("fn", FUNCS)
def test_seeded(fn):
    x = _images(n=32)
    np.testing.assert_array_equal(fn(x, np.random.default_rng(3)), fn(x, np.random.default_rng(3)))
    np.testing.assert_array_equal(fn(x, 3), fn(x, 3))  # an int seed is accepted too
    assert not np.array_equal(fn(x, np.random.default_rng(3)), fn(x, np.random.default_rng(4)))


def test_square_rows_need_no_shape_and_other_rows_do():
    x = np.random.default_rng(0).random((3, 64)).astype(np.float32)
    assert A.random_flip(x, 0).shape == (3, 64)  # 8 x 8
    with pytest.raises(ValueError, match="not square"):
        A.random_flip(np.zeros((3, 10)), 0)
    with pytest.raises(ValueError, match="has 12 pixels"):
        A.random_flip(np.zeros((3, 10)), 0, shape=(3, 4))
    with pytest.raises(ValueError, match="expected images"):
        A.random_flip(np.zeros(10), 0)
    with pytest.raises(TypeError, match="Generator"):
        A.random_flip(x, "seed")


@pytest.mark.parametrize("call, match", [
    (lambda x: A.random_resized_crop(x, 0, scale=(0.5, 1.5)), "scale"),
    (lambda x: A.random_resized_crop(x, 0, scale=(0.9, 0.5)), "scale"),
    (lambda x: A.random_resized_crop(x, 0, ratio=(0, 1)), "ratio"),
    (lambda x: A.random_shift(x, 0, max_shift=-1), "max_shift"),
    (lambda x: A.random_shift(x, 0, max_shift=1.5), "max_shift"),
    (lambda x: A.random_flip(x, 0, p=1.5), "probability"),
    (lambda x: A.gaussian_noise(x, 0, std=-1), "std"),
    (lambda x: A.random_erasing(x, 0, p=-0.1), "probability"),
    (lambda x: A.random_erasing(x, 0, value="zeros"), "value"),
    (lambda x: A.random_intensity(x, 0, brightness=-1), "non-negative"),
])
def test_bad_parameters_raise_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call(_images())


# ------------------------------------------------------------------------------------ each one

def test_full_crop_is_the_identity_and_constant_images_stay_constant():
    square = _images(h=8, w=8)
    np.testing.assert_allclose(A.random_resized_crop(square, 0, scale=(1, 1), ratio=(1, 1)), square, atol=1e-6)
    x = _images()  # 7 x 9: the full box has aspect ratio w/h = 9/7
    np.testing.assert_allclose(A.random_resized_crop(x, 0, scale=(1, 1), ratio=(9 / 7, 9 / 7)), x, atol=1e-6)
    const = np.full((4, 8, 8), 0.25, np.float32)
    np.testing.assert_allclose(A.random_resized_crop(const, 1, scale=(0.1, 0.5)), const, atol=1e-6)


def _bilinear_reference(img, top, left, bh, bw):
    """The crop-and-resize of one image, written as explicit loops over output pixels."""
    h, w = img.shape
    out = np.zeros_like(img, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            y = min(max(top + (i + 0.5) * bh / h - 0.5, 0), h - 1)
            x = min(max(left + (j + 0.5) * bw / w - 0.5, 0), w - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = y - y0, x - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x1])
                         + fy * ((1 - fx) * img[y1, x0] + fx * img[y1, x1]))
    return out


def test_crop_matches_an_explicit_loop_reference():
    x = _images(n=5, h=6, w=8, dtype=np.float64)
    scale, ratio = (0.3, 0.9), (0.5, 2.0)
    out = A.random_resized_crop(x, np.random.default_rng(7), scale=scale, ratio=ratio)
    # the same boxes, drawn as the function draws them
    top, left, bh, bw = A._boxes(np.random.default_rng(7), 5, 6, 8, scale, ratio)
    for k in range(5):
        assert 0.3 * 48 - 1e-9 <= bh[k] * bw[k] or bh[k] == 6 or bw[k] == 8
        np.testing.assert_allclose(out[k], _bilinear_reference(x[k], top[k], left[k], bh[k], bw[k]), atol=1e-12)


def test_shift_matches_an_explicit_loop_reference():
    x = _images(n=20, h=5, w=6, dtype=np.float64)
    out = A.random_shift(x, np.random.default_rng(2), max_shift=2, fill=-1.0)
    rng = np.random.default_rng(2)
    dy, dx = rng.integers(-2, 3, 20), rng.integers(-2, 3, 20)
    assert len(set(zip(dy, dx))) > 5
    for k in range(20):
        ref = np.full((5, 6), -1.0)
        for i in range(5):
            for j in range(6):
                if 0 <= i - dy[k] < 5 and 0 <= j - dx[k] < 6:
                    ref[i, j] = x[k, i - dy[k], j - dx[k]]
        np.testing.assert_allclose(out[k], ref, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(A.random_shift(x, 0, max_shift=0), x)
    zero_fill = A.random_shift(x, np.random.default_rng(2), max_shift=2)
    np.testing.assert_array_equal(zero_fill, np.where(out == -1.0, 0.0, zero_fill))


def test_flip_mirrors_left_right_with_probability_p():
    x = _images(n=400)
    np.testing.assert_array_equal(A.random_flip(x, 0, p=1.0), x[:, :, ::-1])
    np.testing.assert_array_equal(A.random_flip(x, 0, p=0.0), x)
    out = A.random_flip(x, 0, p=0.3)
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(flipped ^ kept)
    assert 0.2 < flipped.mean() < 0.4


def test_noise_has_the_requested_spread_and_is_clipped():
    x = np.full((200, 10, 10), 0.5, np.float32)
    out = A.gaussian_noise(x, 0, std=0.1)
    d = out - x
    assert abs(d.mean()) < 0.005 and abs(d.std() - 0.1) < 0.005
    np.testing.assert_array_equal(A.gaussian_noise(x, 0, std=0.0), x)
    wide = A.gaussian_noise(x, 0, std=2.0)
    assert wide.min() == 0 and wide.max() == 1
    free = A.gaussian_noise(x, 0, std=2.0, clip=None)
    assert free.min() < 0 and free.max() > 1


def test_erasing_sets_one_rectangle_per_hit_image():
    x = np.random.default_rng(0).uniform(0.1, 1.0, (300, 12, 12)).astype(np.float32)
    out = A.random_erasing(x, 0, p=0.5, scale=(0.05, 0.3), value=0.0)
    erased = out == 0
    hit = erased.any(axis=(1, 2))
    assert 0.4 < hit.mean() < 0.6
    np.testing.assert_array_equal(out[~erased], x[~erased])  # nothing else changes
    for m in erased[hit]:
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        # a filled axis-aligned rectangle
        assert m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()
        assert m.sum() == len(rows) * len(cols)
        assert rows[-1] - rows[0] + 1 == len(rows) and cols[-1] - cols[0] + 1 == len(cols)
    np.testing.assert_array_equal(A.random_erasing(x, 0, p=0.0), x)
    noisy = A.random_erasing(x, 0, p=1.0, value="random")
    assert (noisy != x).any(axis=(1, 2)).all()


def test_intensity_changes_brightness_and_contrast_within_range():
    x = _images(n=100)
    out = A.random_intensity(x, 0, brightness=0.2, contrast=0.2, p=1.0)
    assert not np.allclose(out, x)
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(A.random_intensity(x, 0, p=0.0), x)


@given(n=st.integers(1, 5), h=st.integers(1, 9), w=st.integers(1, 9), seed=st.integers(0, 2**16))
@capped(15)
def test_every_augmentation_takes_any_small_size(n, h, w, seed):
    x = np.random.default_rng(seed).random((n, h, w)).astype(np.float32)
    aug = A.Augment((h, w), crop_scale=(0.2, 1.0), max_shift=1, flip=0.5, intensity=0.2,
                    noise_std=0.05, erase_p=0.5)
    out = aug(x, seed)
    assert out.shape == x.shape and np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


# ----------------------------------------------------------------------------------- pipeline

def test_augment_pipeline_settings_round_trip_and_presets():
    aug = A.Augment((28, 28), crop_scale=(0.3, 1.0), max_shift=2, flip=0.5, intensity=0.1,
                    noise_std=0.05, erase_p=0.2)
    again = A.Augment.from_dict(aug.to_dict())
    x = _images(n=8, h=28, w=28).reshape(8, 784)
    np.testing.assert_array_equal(aug(x, 5), again(x, 5))
    with pytest.raises(ValueError, match="unknown settings"):
        A.Augment.from_dict({**aug.to_dict(), "rotate": 10})
    assert A.preset("digits", (8, 8)).flip == 0  # a mirrored digit is another symbol
    assert A.preset("fashion-mnist", (28, 28)).flip > 0
    none = A.Augment((7, 9), crop_scale=None, flip=0.0)
    np.testing.assert_array_equal(none(_images(), 0), _images())


def test_two_views_differ_and_view_grid_puts_originals_first():
    aug = A.preset("fashion-mnist", (7, 9))
    x = _images()
    rng = np.random.default_rng(0)
    assert not np.array_equal(aug(x, rng), aug(x, rng))
    grid = A.view_grid(x[:3], aug, 0, views=4)
    assert grid.shape == (3, 5, 7, 9)
    np.testing.assert_array_equal(grid[:, 0], x[:3])
