"""`RTMO`: the one-stage RTMO pose estimator (Lu et al., CVPR 2024; mmpose `projects/rtmo`).

```python
model = keras_pose.from_preset("rtmo_s_body7_640x640")
result = model.predict_keypoints("image.jpg")   # every person: boxes, scores, keypoints
```

The network (`RTMONetwork`, the task's `backbone`) takes the letterboxed
image as the reference feeds it: mmpose's ``BottomupResize`` (aspect kept,
long side to the input size, centred, padded with 114;
`WarpLetterboxResizer`), BGR 0..255 without normalisation
(``PoseDataPreprocessor(mean=0, std=1, bgr_to_rgb=False)``). Calling the
task returns the raw head outputs ``{"<kind>_s<stride>": (B, H/s, W/s, C)}``
(kinds ``cls``, ``bbox``, ``kpt_vis``, ``pose_vec``).

Decoding (`RTMODecoder`, `keras.ops`, in the graph on every backend; mmpose
``RTMOHead.predict``): sigmoid scores, boxes from the priors, score
threshold (0.1), greedy NMS (IoU 0.65) with a static maximum of people,
the DCC keypoints of the kept instances, boxes clamped to the input. Training:
``compile()`` then ``fit`` on RTMO target dicts (`rtmo_training`: SimOTA,
the RTMO losses, `RTMOModeSwitch` for the two-stage schedule).
"""

import keras
from keras import ops

from keras_pose.models.one_stage_pose_estimator import DECODED_KEYS, OneStagePoseEstimator
from keras_pose.models.rtmo.rtmo_decoding import decode_rtmo
from keras_pose.models.rtmo.rtmo_network import RTMONetwork
from keras_pose.models.top_down_pose_estimator import resolve_num_keypoints

# What the reference feeds RTMO: BGR, 0..255, no normalisation.
RTMO_PREPROCESSING = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "channel_order": "bgr"}
RTMO_PAD_VALUE = 114
# mmpose RTMO configs: test_cfg=dict(input_size=..., score_thr=0.1, nms_thr=0.65).
RTMO_TEST_CFG = {"score_threshold": 0.1, "nms_threshold": 0.65, "max_instances": 100, "max_candidates": None}


@keras.saving.register_keras_serializable(package="keras_pose")
class RTMODecoder(keras.layers.Layer):
    """RTMO raw head outputs -> fixed-size instances (`decode_rtmo`), as a layer (graphs, export).

    Call on the head's dict; returns ``{"boxes" (B, M, 4) xyxy, "scores"
    (B, M), "keypoints" (B, M, K, 2), "keypoint_scores" (B, M, K), "valid"
    (B, M) bool, "prior_index" (B, M) int32, "bbox_cs" (B, M, 4), "priors"
    (B, M, 2)}`` in model-input pixels.

    Args:
        dcc: the network's `DynamicCoordinateClassifier` (shared weights).
        image_size: the model input (H, W).
        strides: the head levels.
        score_threshold, nms_threshold, max_instances, max_candidates: see
            `decode_rtmo`.
    """

    def __init__(self, dcc, image_size, strides=(16, 32), score_threshold=0.1, nms_threshold=0.65,
                 max_instances=100, max_candidates=None, **kwargs):
        super().__init__(**kwargs)
        self.dcc = dcc
        self.image_size = tuple(int(s) for s in image_size)
        self.strides = tuple(int(s) for s in strides)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_instances = int(max_instances)
        self.max_candidates = None if max_candidates is None else int(max_candidates)
        if self.max_instances < 1 or (self.max_candidates is not None and self.max_candidates < 1):
            raise ValueError(
                f"max_instances ({max_instances}) and max_candidates ({max_candidates}) must be positive."
            )

    def call(self, outputs):
        return decode_rtmo(outputs, self.dcc, self.image_size, self.strides, score_threshold=self.score_threshold,
                           nms_threshold=self.nms_threshold, max_instances=self.max_instances,
                           max_candidates=self.max_candidates)

    def compute_output_spec(self, outputs):
        batch = next(iter(outputs.values())).shape[0]
        priors = sum(-(-self.image_size[0] // s) * -(-self.image_size[1] // s) for s in self.strides)
        candidates = priors if self.max_candidates is None else min(self.max_candidates, priors)
        m, k = min(self.max_instances, candidates), self.dcc.num_keypoints
        spec = lambda shape, dtype="float32": keras.KerasTensor((batch, *shape), dtype=dtype)  # noqa: E731
        return {
            "boxes": spec((m, 4)),
            "scores": spec((m,)),
            "keypoints": spec((m, k, 2)),
            "keypoint_scores": spec((m, k)),
            "bbox_cs": spec((m, 4)),
            "priors": spec((m, 2)),
            "prior_index": spec((m,), "int32"),
            "valid": spec((m,), "bool"),
        }


@keras.saving.register_keras_serializable(package="keras_pose")
class RTMO(OneStagePoseEstimator):
    """RTMO one-stage pose estimator.

    Input letterboxed images (B, H, W, 3), BGR 0..255 (the preprocessor
    makes them from RGB images); output the raw head outputs (see the module
    docstring). `predict_keypoints(images)` returns every person.

    Args:
        backbone: an `RTMONetwork` (CSPDarknet + HybridEncoder + head + DCC).
        keypoint_spec: `KeypointSpec`, built-in name ("coco", "crowdpose"),
            dict or file path; must have `backbone.num_keypoints` keypoints.
        preprocessor: a `WholeImagePreprocessor`; default the reference
            letterbox (pad 114) with BGR 0..255 input.
        test_cfg: ``score_threshold`` (0.1), ``nms_threshold`` (0.65),
            ``max_instances`` (100, the static number of people per image),
            ``max_candidates`` (None: every cell enters NMS, as mmpose).
        **kwargs: `name`, `dtype`, `codec`, `loss`.
    """

    backbone_cls = RTMONetwork
    default_test_cfg = RTMO_TEST_CFG

    def __init__(self, backbone, keypoint_spec="coco", preprocessor=None, test_cfg=None, **kwargs):
        resolve_num_keypoints(keypoint_spec, backbone.num_keypoints, what="RTMO head")
        self.backbone = backbone
        inputs = keras.Input(shape=(*backbone.image_size, 3), name="images")
        outputs = backbone(inputs)
        super().__init__(inputs=inputs, outputs=outputs, keypoint_spec=keypoint_spec, preprocessor=preprocessor,
                         test_cfg=test_cfg, **kwargs)

    @classmethod
    def default_preprocessor(cls, image_size, preprocessing=None):
        """The reference pre-processing: `WarpLetterboxResizer` (pad 114) + BGR 0..255 converter."""
        from keras_pose.preprocessing import PoseImageConverter, WarpLetterboxResizer, WholeImagePreprocessor

        settings = dict(RTMO_PREPROCESSING, **(preprocessing or {}))
        pad_value = settings.pop("pad_value", RTMO_PAD_VALUE)
        return WholeImagePreprocessor(
            resizer=WarpLetterboxResizer(image_size, pad_value=pad_value),
            image_converter=PoseImageConverter(**settings),
        )

    @classmethod
    def from_checkpoint_config(cls, *, image_size=(640, 640), keypoint_spec="coco", num_keypoints=None,
                               preprocessing=None, decoding=None, dtype=None, name=None, **architecture):
        """An untrained model from a preset `config` (`RTMONetwork` arguments + task settings).

        Args:
            image_size: (H, W), multiples of 32.
            keypoint_spec: the keypoint set.
            num_keypoints: K (default the spec's).
            preprocessing: ``{"mean", "std", "channel_order", "pad_value"}``
                (default the reference's).
            decoding: ``{"score_threshold", "nms_threshold", "max_instances",
                "max_candidates"}`` (other keys, e.g. ``"reference"``, are
                records only).
            dtype, name: as every model.
            **architecture: `RTMONetwork` arguments (`deepen_factor`,
                `widen_factor`, widths, DCC settings).
        """
        if num_keypoints is None:
            num_keypoints = resolve_num_keypoints(keypoint_spec)
        network = RTMONetwork(image_size=tuple(image_size), num_keypoints=num_keypoints, dtype=dtype,
                              **architecture)
        test_cfg = {k: v for k, v in (decoding or {}).items() if k in RTMO_TEST_CFG}
        kwargs = {"name": name} if name else {}
        return cls(backbone=network, keypoint_spec=keypoint_spec,
                   preprocessor=cls.default_preprocessor(network.image_size, preprocessing),
                   test_cfg=test_cfg, **kwargs)

    def decoder(self, **settings):
        config = {**self.test_cfg, **{k: v for k, v in settings.items() if v is not None}}
        return RTMODecoder(self.backbone.dcc, self.image_size, self.backbone.featmap_strides,
                           score_threshold=config["score_threshold"], nms_threshold=config["nms_threshold"],
                           max_instances=config["max_instances"], max_candidates=config["max_candidates"],
                           name="rtmo_decoder")

    # ---------------------------------------------------------------- training
    def compile(self, optimizer="auto", loss="auto", **kwargs):
        """Compile for `fit` on RTMO targets (`rtmo_training` module docstring).

        Adds the training-only branches (`RTMOTrainingBranches`: keypoint proxy
        regression, sigma) if absent; the loss is an `RTMOLoss` (the mmpose
        weights, the keypoint spec's sigmas) unless given.

        Args:
            optimizer: "auto" = `rtmo_optimizer` (AdamW 0.004, weight decay
                0.05 off for norms and biases, encoder LR x0.05, global
                clip 0.1), or any Keras optimizer.
            loss: "auto" or an `RTMOLoss`.
            **kwargs: Keras `compile` arguments.
        """
        from keras_pose.models.rtmo.rtmo_training import RTMOLoss, RTMOTrainingBranches, head_with_pose_features

        if not self._has_keypoint_spec():
            # keras-hub's Task.__init__ compiles once before the task is complete: no training setup then.
            return super().compile(optimizer=optimizer, loss=loss, **kwargs)
        network = self.backbone
        if getattr(self, "training_branches", None) is None:
            branches = RTMOTrainingBranches(
                num_keypoints=network.num_keypoints, featmap_strides=network.featmap_strides,
                pose_channels=network.num_groups * network.widths["channels_per_group"],
                pose_vec_channels=network.widths["pose_vec_channels"], dtype=self.dtype_policy,
                name="rtmo_training_branches",
            )
            branches.build()
            self.training_branches = branches
        object.__setattr__(self, "_head_with_features", head_with_pose_features(network.head))
        if loss == "auto":
            loss = RTMOLoss(sigmas=self.keypoint_spec.sigmas)
        if not isinstance(loss, RTMOLoss):
            raise TypeError(f"RTMO trains with an RTMOLoss (or loss='auto'), got {type(loss).__name__}.")
        object.__setattr__(self, "rtmo_loss", loss)
        if not hasattr(self, "loss_term_trackers"):
            from keras_pose.models.rtmo.rtmo_training import LOSS_TERMS

            self.loss_term_trackers = {t: keras.metrics.Mean(name=f"loss_{t}") for t in LOSS_TERMS}
        if optimizer == "auto":
            from keras_pose.models.rtmo.rtmo_training import rtmo_optimizer

            optimizer = rtmo_optimizer(self)
        # As every family (PoseEstimator.compile): "auto" XLA on TensorFlow is the family's measured default.
        jit_compile = kwargs.pop("jit_compile", "auto")
        if jit_compile == "auto" and keras.backend.backend() == "tensorflow":
            jit_compile = bool(self.tf_train_jit_compile) and not kwargs.get("run_eagerly", False)
        keras.Model.compile(self, optimizer=optimizer, loss=None, jit_compile=jit_compile, **kwargs)

    def get_compile_config(self):
        """The optimizer and `RTMOLoss` when compiled for training; None otherwise.

        (keras-hub's `Task.__init__` compiles once before the task is complete:
        that compile has no RTMO loss and is not saved.)
        """
        from keras_pose.utils.compile_config import loss_compile_config

        if getattr(self, "rtmo_loss", None) is None:
            return None
        return loss_compile_config(self, "rtmo_loss")

    def has_task_weights(self):
        """False unless weights beyond the network and the training-only branches exist.

        A preset (`save_to_preset`) holds the network only, as mmpose's deployed
        models drop ``out_kpt_reg`` and ``sigma_fc``; `compile()` adds fresh
        branches. To resume training with them, save the task's weights
        (``model.save_weights``) or use the trainer's checkpoints.
        """
        branches = getattr(self, "training_branches", None)
        skip = {id(w) for w in self.backbone.weights}
        skip |= {id(w) for w in branches.weights} if branches is not None else set()
        return any(id(w) not in skip for w in self.weights)

    def _has_keypoint_spec(self):
        try:
            return self.keypoint_spec is not None
        except AttributeError:
            return False

    def call(self, inputs, training=None, mask=None):
        """Raw head outputs; while training (compiled) also ``kpt_reg_s<stride>`` (the proxy keypoint offsets)."""
        head = self.__dict__.get("_head_with_features")
        if not training or head is None:
            return super().call(inputs, training=training, mask=mask)
        network = self.backbone
        outputs = dict(head(network.neck(network.backbone(inputs, training=training), training=training),
                            training=training))
        features = [outputs.pop(f"pose_feat_s{s}") for s in network.featmap_strides]
        outputs.update(self.training_branches.keypoint_offsets(features))
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None or getattr(self, "rtmo_loss", None) is None:
            raise ValueError(
                "RTMO trains on target dicts (boxes, keypoints, keypoint_visible, instance_valid, ignore_mask; "
                "see keras_pose.models.rtmo.rtmo_training) after model.compile()."
            )
        if "kpt_reg_s" + str(self.backbone.featmap_strides[0]) not in y_pred:
            raise ValueError("RTMO's loss needs the training outputs: call the model with training=True.")
        terms = self.rtmo_loss(y, y_pred, self.backbone, self.training_branches, self.image_size)
        total = 0.0
        for name, tracker in self.loss_term_trackers.items():
            if name in terms:
                tracker.update_state(terms[name])
                total = total + terms[name]
        if self.losses:
            total = total + ops.sum(ops.stack([ops.cast(l, "float32") for l in self.losses]))
        return total


__all__ = ["DECODED_KEYS", "RTMO", "RTMODecoder", "RTMO_PREPROCESSING", "RTMO_TEST_CFG"]
