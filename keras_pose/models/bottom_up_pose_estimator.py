"""`BottomUpPoseEstimator`: whole-image models that find every part, then group parts into people.

The paradigm subclass of `PoseEstimator` for bottom-up models (OpenPose;
the same frame fits associative-embedding models). `predict_keypoints`
takes whole images (no boxes) and, per image:

1. builds the network input at each scale of ``test_cfg["scales"]``
   (`network_input`: the image scaled so its height is ``scale *
   net_height``, padded right / bottom to a multiple of the stride with
   ``pad_value``, normalised by `normalize`);
2. runs the network (and, with ``flip_test``, on the mirrored input),
   takes the subclass's final maps (`final_maps`), un-flips them
   (`flip_maps`), upsamples them to the image (`upsample_maps`: x stride,
   crop the padding, resize to the image size) and averages over scales and
   flips;
3. groups them into people (`group`) and returns a `PoseResult` in image
   pixels (`result_from_groups`).

A subclass implements `final_maps`, `flip_maps`, `group` and
`result_from_groups`, and may override `normalize` (default: the
reference OpenPose normalisation, BGR pixel / 256 - 0.5).
"""

import cv2
import keras
import numpy as np

from keras_pose.models.pose_estimator import PoseEstimator

UPSAMPLERS = {"cubic": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR, "lanczos": cv2.INTER_LANCZOS4}


def pad_right_bottom(image, stride, pad_value):
    """Pad ``(H, W, C)`` right / bottom to multiples of ``stride`` with ``pad_value``; returns (array, (pad_h, pad_w))."""
    h, w = image.shape[:2]
    pad_h, pad_w = (-h) % stride, (-w) % stride
    if not pad_h and not pad_w:
        return image, (0, 0)
    out = np.full((h + pad_h, w + pad_w) + image.shape[2:], pad_value, dtype=image.dtype)
    out[:h, :w] = image
    return out, (pad_h, pad_w)


def resize_image(image, scale):
    """``image`` scaled by ``scale`` with ``cv2.INTER_CUBIC`` (Hzzone/pytorch-openpose; size rounded)."""
    h, w = image.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def upsample_maps(maps, stride, resized_hw, image_hw, method="cubic", dtype=np.float64):
    """Network-resolution maps ``(h, w, C)`` -> image-resolution ``(H, W, C)`` of ``dtype``.

    x ``stride`` (``cv2.resize``), crop the right / bottom padding to the
    resized image's ``resized_hw``, resize to ``image_hw``: the reference
    decode (``method="cubic"``: Hzzone's ``INTER_CUBIC``). cv2 computes in
    float32, so ``dtype=np.float32`` gives the same values without the
    float64 copy (the result may then be a view of a larger array).
    """
    interpolation = UPSAMPLERS[method]
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    h, w, c = maps.shape

    def resize(x, size):  # cv2 handles at most 512 channels per call
        parts = [cv2.resize(x[..., i:i + 512], size, interpolation=interpolation).reshape(size[1], size[0], -1)
                 for i in range(0, x.shape[-1], 512)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)

    up = resize(maps, (w * stride, h * stride))
    up = up[:resized_hw[0], :resized_hw[1]]
    if up.shape[:2] != (int(image_hw[0]), int(image_hw[1])):  # cv2's same-size resize is a copy: skipped
        up = resize(np.ascontiguousarray(up), (int(image_hw[1]), int(image_hw[0])))
    return up if up.dtype == dtype else up.astype(dtype)


class BottomUpPoseEstimator(PoseEstimator):
    """Base of bottom-up tasks (see the module docstring).

    ``test_cfg`` keys read here: ``net_height`` (input height at scale 1,
    pixels), ``scales`` (list of factors, averaged), ``flip_test``,
    ``upsample`` ("cubic", "linear", "lanczos"), ``stride`` (default 8),
    ``pad_value`` (default 128).
    """

    paradigm = "bottom_up"
    per_image_arguments = ()

    # ---------------------------------------------------------- subclass hooks
    def normalize(self, image_bgr):
        """uint8 BGR ``(H, W, 3)`` -> float32 network input (reference OpenPose: / 256 - 0.5)."""
        return image_bgr.astype(np.float32) / 256.0 - 0.5

    def final_maps(self, outputs):
        raise NotImplementedError

    def flip_maps(self, *maps):
        raise NotImplementedError

    def group(self, *maps, image_height):
        raise NotImplementedError

    def result_from_groups(self, groups, image_hw):
        raise NotImplementedError

    # ---------------------------------------------------------------- pipeline
    def network_input(self, image_rgb, scale):
        """``(x (h, w, 3) float32, resized (h', w'))``: one image at one scale, padded and normalised."""
        cfg = self.test_cfg
        stride, pad_value = int(cfg.get("stride", 8)), cfg.get("pad_value", 128)
        bgr = np.ascontiguousarray(image_rgb[..., ::-1])
        factor = float(scale) * float(cfg["net_height"]) / image_rgb.shape[0]
        resized = resize_image(bgr, factor)
        padded, _ = pad_right_bottom(resized, stride, pad_value)
        return self.normalize(padded), resized.shape[:2]

    def _forward(self, x):
        outputs = self(keras.ops.convert_to_tensor(x[None]), training=False)
        return [keras.ops.convert_to_numpy(m)[0] for m in self.final_maps(outputs)]

    def image_maps(self, image_rgb):
        """The averaged, upsampled final maps of one image (a list, the order of `final_maps`)."""
        cfg = self.test_cfg
        scales = list(cfg.get("scales") or [1.0])
        flips = (False, True) if cfg.get("flip_test") else (False,)
        stride = int(cfg.get("stride", 8))
        n = len(scales) * len(flips)
        # one pass: cv2's float32 maps as they are (exact); several: averaged in float64 as the reference
        dtype = np.float32 if n == 1 else np.float64
        method = cfg.get("upsample", "cubic")
        total = None
        for scale in scales:
            x, resized_hw = self.network_input(image_rgb, scale)
            for flip in flips:
                # the flipped input is padded on the right of the mirrored image: un-pad before un-flipping
                inputs = self.network_input(np.ascontiguousarray(image_rgb[:, ::-1]), scale)[0] if flip else x
                maps = [upsample_maps(m, stride, resized_hw, image_rgb.shape[:2], method, dtype)
                        for m in self._forward(inputs)]
                if flip:
                    maps = list(self.flip_maps(*maps))
                total = maps if total is None else [t + m for t, m in zip(total, maps)]
        return total if n == 1 else [t / n for t in total]

    def _predict_image_batch(self, images, batch_size=32, names=None, flip_test=None, scales=None, **kwargs):
        """Whole images -> `PoseResult`s; ``flip_test`` / ``scales`` override ``test_cfg`` for this call."""
        if kwargs:
            raise TypeError(f"Unknown predict_keypoints arguments for a bottom-up model: {sorted(kwargs)} (it "
                            "takes whole images, no boxes); options: flip_test, scales, or set them in test_cfg.")
        overrides = {k: v for k, v in (("flip_test", flip_test), ("scales", scales)) if v is not None}
        saved = self.__dict__.get("_pose_test_cfg")
        if overrides:
            object.__setattr__(self, "_pose_test_cfg", {**saved, **overrides})
        try:
            return [self._predict_one(image) for image in images]
        finally:
            object.__setattr__(self, "_pose_test_cfg", saved)

    def _predict_one(self, image):
        maps = self.image_maps(image)
        groups = self.group(*maps, image_height=image.shape[0])
        return self.result_from_groups(groups, image.shape[:2])
