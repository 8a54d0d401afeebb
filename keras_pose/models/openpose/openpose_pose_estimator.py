"""`OpenPose`: the OpenPose network as a bottom-up pose estimator."""

import keras
import numpy as np

from keras_pose.models.bottom_up_pose_estimator import BottomUpPoseEstimator
from keras_pose.models.openpose.openpose_backbone import OpenPoseBackbone
from keras_pose.models.openpose import openpose_layers as L
from keras_pose.models.openpose.openpose_targets import OpenPoseLoss, OpenPoseMaps

# CMU's test setting (openpose flags / the python demo): net height 368, one
# scale (the demo's multi-scale search uses 0.5, 1, 1.5, 2), thresholds of
# the reference parser.
DEFAULT_TEST_CFG = {
    "net_height": 368,
    "scales": [1.0],
    "flip_test": False,
    "upsample": "cubic",
    "peak_threshold": 0.1,
    "paf_threshold": 0.05,
    "gaussian_sigma": 3.0,
    "mid_num": 10,
    "min_parts": 4,
    "min_mean_score": 0.4,
    "grouping": "fast",
}


def openpose_keypoint_spec(variant):
    """The keypoint spec of a released variant: "openpose" (COCO-18) or the BODY_25 spec."""
    if variant == "coco18":
        return "openpose"
    return L.body25_keypoint_spec()


@keras.saving.register_keras_serializable(package="keras_pose")
class OpenPose(BottomUpPoseEstimator):
    """OpenPose (Cao et al.): part confidence maps + part affinity fields, grouped into people.

    Input normalised BGR images ``(B, H, W, 3)`` of any size (pixel / 256 -
    0.5; `predict_keypoints` makes them); output a dict of float32 maps at
    stride 8: ``"paf_stage{i}"`` ``(B, h, w, 2L)`` and ``"heatmap_stage{j}"``
    ``(B, h, w, K + 1)`` (parts + background), every stage (intermediate
    supervision); the last of each is the prediction.

    Args:
        backbone: an `OpenPoseBackbone`.
        keypoint_spec: the part order of the heatmaps ("openpose" for
            COCO-18); must have ``backbone.num_heatmaps - 1`` keypoints.
        limbs: ``[(part_a, part_b), ...]`` of the PAFs, in PAF order of
            `paf_channels`; default: the released variant's (COCO-18 /
            BODY_25), else the spec's skeleton.
        paf_channels: ``[(x_channel, y_channel), ...]`` per limb; default:
            the released variant's, else ``(2i, 2i + 1)``.
        test_cfg: test-time settings (`DEFAULT_TEST_CFG` keys).
        codec: training targets (default `OpenPoseMaps` on the nominal
            ``net_height`` square input: confidence maps, PAFs, mask).
        loss: default `OpenPoseLoss` (masked L2 at every stage).
        **kwargs: `preprocessing` / `decoding` records of the preset (kept
            in `test_cfg`), `loss`, `name`, `dtype`.
    """

    backbone_cls = OpenPoseBackbone
    default_test_cfg = DEFAULT_TEST_CFG

    def __init__(self, backbone, keypoint_spec="openpose", limbs=None, paf_channels=None, test_cfg=None,
                 preprocessing=None, decoding=None, **kwargs):
        from keras_pose.keypoints import get_keypoint_spec

        spec = get_keypoint_spec(keypoint_spec)
        if spec.num_keypoints != backbone.num_heatmaps - 1:
            raise ValueError(
                f"keypoint_spec {spec.name!r} has {spec.num_keypoints} keypoints but the backbone predicts "
                f"{backbone.num_heatmaps} heatmaps (keypoints + background); use a spec with "
                f"{backbone.num_heatmaps - 1} keypoints.")
        limbs, paf_channels = L.resolve_limbs(spec, backbone.num_pafs, limbs, paf_channels)

        # === Layers ===
        self.backbone = backbone
        names = [f"paf_stage{i + 1}" for i in range(backbone.paf_stages)]
        names += [f"heatmap_stage{i + 1}" for i in range(backbone.heatmap_stages)]
        self.output_casts = {n: keras.layers.Activation("linear", dtype="float32", name=n) for n in names}

        # === Functional model ===
        inputs = keras.Input(shape=(None, None, 3), name="images")
        maps = backbone(inputs)
        outputs = {n: self.output_casts[n](maps[n]) for n in names}
        cfg = dict(DEFAULT_TEST_CFG)
        cfg.update((decoding or {}).get("test_cfg", {}) if isinstance(decoding, dict) else {})
        cfg.update(test_cfg or {})
        if kwargs.get("codec") is None:  # training targets on the nominal square input
            h = int(cfg["net_height"])
            kwargs["codec"] = OpenPoseMaps((h, h), spec.num_keypoints, limbs, paf_channels)
        if kwargs.get("loss") is None:
            kwargs["loss"] = OpenPoseLoss()
        super().__init__(inputs=inputs, outputs=outputs, keypoint_spec=spec, test_cfg=cfg, **kwargs)

        # === Config ===
        self.limbs = [tuple(int(v) for v in pair) for pair in limbs]
        self.paf_channels = [tuple(int(v) for v in pair) for pair in paf_channels]
        # plain values, kept out of Keras' attribute tracking
        object.__setattr__(self, "_openpose_records", {"preprocessing": preprocessing, "decoding": decoding})

    @property
    def image_size(self):
        """Nominal ``(net_height, net_height)`` input (exports, presets); the network takes any size."""
        h = int(self.test_cfg["net_height"])
        return (h, h)

    @property
    def preprocessing(self):
        """The preset's pre-processing record (dict or None)."""
        return self.__dict__["_openpose_records"]["preprocessing"]

    @property
    def decoding(self):
        """The preset's decoding record (dict or None)."""
        return self.__dict__["_openpose_records"]["decoding"]

    # ------------------------------------------------------------------ maps
    def final_maps(self, outputs):
        """``(heatmaps, pafs)`` of the last stages, from the model's output dict."""
        return (outputs[f"heatmap_stage{self.backbone.heatmap_stages}"],
                outputs[f"paf_stage{self.backbone.paf_stages}"])

    def heatmaps_from_outputs(self, outputs):
        """The final part confidence maps ``(B, h, w, K)`` (the background channel dropped)."""
        return self.final_maps(outputs)[0][..., : self.keypoint_spec.num_keypoints]

    def serving_outputs(self, raw_outputs):
        """``{"heatmaps": (B, h, w, K) parts, "pafs": (B, h, w, 2L)}``: what grouping needs."""
        _, pafs = self.final_maps(raw_outputs)
        return {"heatmaps": self.heatmaps_from_outputs(raw_outputs), "pafs": pafs}

    def export_decoding(self):
        return {"codec": None, "paradigm": "bottom_up", "type": "openpose", "stride": 8, "limbs": [list(p) for p in self.limbs],
                "paf_channels": [list(p) for p in self.paf_channels], "test_cfg": self.test_cfg,
                "input": "BGR, pixel / 256 - 0.5, height resized to net_height, padded right / bottom to a "
                         "multiple of 8 with 128"}

    @property
    def heatmap_size(self):
        """Map size ``(h, w)`` of the nominal `image_size` input (stride 8, rounded up)."""
        return tuple(-(-s // self.backbone.stride) for s in self.image_size)

    def export_preprocessing(self):
        """The preprocessing section of export metadata (no `PosePreprocessor`: the reference's own)."""
        return {"channel_order": "bgr", "formula": "pixel / 256 - 0.5", "pixel_range": [0, 255],
                "resize": "height to image_size[0] (cv2.INTER_CUBIC, aspect kept), pad right / bottom to a "
                          "multiple of 8 with 128; an export has the fixed image_size input"}

    def flip_maps(self, heatmaps, pafs):
        """Maps of a horizontally flipped image -> maps of the image (NumPy, ``(h, w, C)``).

        Swaps left / right parts (the spec's flip pairs) and the limbs that
        map onto each other, and negates the PAFs' x components.
        """
        heatmaps = heatmaps[:, ::-1]
        pafs = pafs[:, ::-1]
        k = self.keypoint_spec.num_keypoints
        perm = np.asarray(list(self.keypoint_spec.flip_indices) + list(range(k, heatmaps.shape[-1])))
        heatmaps = heatmaps[..., perm]
        out = np.zeros_like(pafs)
        limb_index = {tuple(p): i for i, p in enumerate(self.limbs)}
        flip = perm[:k]
        for i, (a, b) in enumerate(self.limbs):
            cx, cy = self.paf_channels[i]
            j = limb_index.get((int(flip[a]), int(flip[b])))
            if j is not None:  # same direction: only x changes sign
                sx, sy = self.paf_channels[j]
                out[..., cx], out[..., cy] = -pafs[..., sx], pafs[..., sy]
                continue
            j = limb_index.get((int(flip[b]), int(flip[a])))
            if j is None:
                raise ValueError(f"Limb {(a, b)} has no mirror limb among {self.limbs}; flip test needs the "
                                 "limbs to be closed under the spec's flip pairs.")
            sx, sy = self.paf_channels[j]  # stored the other way round: y changes sign
            out[..., cx], out[..., cy] = pafs[..., sx], -pafs[..., sy]
        return heatmaps, out

    # --------------------------------------------------------------- training
    def whole_image_preprocessor(self, image_size=None):
        """The `WholeImagePreprocessor` of training inputs: BGR, pixel / 256 - 0.5, pad 128 right / bottom.

        The same input convention as `predict_keypoints` (which pads right /
        bottom to a multiple of 8 with 128).
        """
        from keras_pose.preprocessing import PoseImageConverter, WholeImagePreprocessor, WholeImageResizer

        resizer = WholeImageResizer(image_size or self.image_size, pad_value=128, pad_position="bottom_right")
        converter = PoseImageConverter(mean=[128.0] * 3, std=[256.0] * 3, channel_order="bgr")
        return WholeImagePreprocessor(resizer=resizer, image_converter=converter)

    def target_encoder(self, image_size=None, data_keypoint_spec=None):
        """An `OpenPoseTargetEncoder` for inputs of ``image_size`` and data in ``data_keypoint_spec``.

        COCO-17 data train the COCO-18 model (neck from the shoulders);
        otherwise the data must be in the model's keypoint order.
        """
        from keras_pose.keypoints import get_keypoint_spec
        from keras_pose.models.openpose.openpose_targets import OpenPoseTargetEncoder

        size = tuple(int(v) for v in (image_size or self.image_size))
        codec = OpenPoseMaps(size, self.keypoint_spec.num_keypoints, self.limbs, self.paf_channels,
                             sigma=self.codec.sigma, paf_width=self.codec.paf_width)
        k = self.keypoint_spec.num_keypoints
        data = get_keypoint_spec(data_keypoint_spec) if data_keypoint_spec is not None else self.keypoint_spec
        if data.num_keypoints == k:
            return OpenPoseTargetEncoder(codec)
        if data.num_keypoints == 17 and k == 18 and self.keypoint_spec.name == "openpose":
            return OpenPoseTargetEncoder(codec, convert="coco17_to_op18")
        raise ValueError(f"The data have {data.num_keypoints} keypoints ({data.name!r}) but the model predicts {k} "
                         f"({self.keypoint_spec.name!r}); train on data in the model's keypoint order, or COCO-17 data "
                         "for the COCO-18 model.")

    @property
    def evaluation_keypoint_spec(self):
        """The spec of the annotations this model is scored on: COCO-17 for the COCO-18 model, else its own."""
        from keras_pose.keypoints import get_keypoint_spec

        return get_keypoint_spec("coco") if self.keypoint_spec.name == "openpose" else self.keypoint_spec

    def to_data_keypoints(self, keypoints, scores, data_keypoint_spec):
        """Predicted keypoints ``(N, K, 2)`` / scores -> the data's order (OpenPose-18 -> COCO-17 drops the neck)."""
        from keras_pose.keypoints import get_keypoint_spec

        data = get_keypoint_spec(data_keypoint_spec)
        if data.num_keypoints == self.keypoint_spec.num_keypoints:
            return keypoints, scores
        if data.num_keypoints == 17 and self.keypoint_spec.name == "openpose":
            return L.op18_to_coco17(keypoints, scores)
        raise ValueError(f"No mapping from the model's {self.keypoint_spec.name!r} keypoints to {data.name!r}.")

    # --------------------------------------------------------------- grouping
    def group(self, heatmaps, pafs, *, image_height):
        """People from upsampled image-resolution maps (see `keras_pose.models.openpose.openpose_grouping`)."""
        from keras_pose.models.openpose.openpose_grouping import group_people

        cfg = self.test_cfg
        return group_people(
            heatmaps, pafs, self.limbs, self.paf_channels, image_height=image_height,
            method=cfg["grouping"], peak_threshold=cfg["peak_threshold"], paf_threshold=cfg["paf_threshold"],
            sigma=cfg["gaussian_sigma"], mid_num=cfg["mid_num"], min_parts=cfg["min_parts"],
            min_mean_score=cfg["min_mean_score"],
        )

    def result_from_groups(self, groups, image_hw):
        """A `PoseResult` from the parser's ``(candidate, subset)`` (image pixels; missing parts score 0)."""
        from keras_pose.models.openpose.openpose_grouping import people_arrays
        from keras_pose.results import PoseResult

        keypoints, scores, person = people_arrays(*groups, self.keypoint_spec.num_keypoints)
        return PoseResult(keypoints=keypoints, scores=scores, boxes=None, box_scores=None,
                          keypoint_spec=self.keypoint_spec, image_size=tuple(int(s) for s in image_hw),
                          person_scores=person)

    # ----------------------------------------------------------------- config
    @classmethod
    def from_checkpoint_config(cls, *, keypoint_spec=None, image_size=None, preprocessing=None, decoding=None,
                               dtype=None, name=None, **backbone_kwargs):
        """An untrained model from a preset `config` (backbone keyword arguments + task settings).

        ``image_size`` is the preset's nominal input (``[net_height, width]``);
        the network itself takes any size.
        """
        backbone_kwargs.pop("num_keypoints", None)
        backbone = OpenPoseBackbone(dtype=dtype, **backbone_kwargs)
        if keypoint_spec is None:
            keypoint_spec = openpose_keypoint_spec(backbone.variant)
        kwargs = {"name": name} if name else {}
        test_cfg = dict((decoding or {}).get("test_cfg", {})) if decoding else None
        if image_size is not None:
            test_cfg = dict(test_cfg or {}, net_height=int(image_size[0]))
        return cls(backbone=backbone, keypoint_spec=keypoint_spec, test_cfg=test_cfg, preprocessing=preprocessing,
                   decoding=decoding, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "limbs": [list(p) for p in self.limbs],
            "paf_channels": [list(p) for p in self.paf_channels],
            "preprocessing": self.preprocessing,
            "decoding": self.decoding,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
